//! The original design's programs (`bench/baseline/`) on the same peers: its bash step
//! through whole deployments, its promotion step, and its Python functions cold and
//! warm.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};

use super::{
    BASELINE_NAMESPACE, BaselineRun, BaselineStep, Peers, PythonRun, RealConfig, RealError,
    fixtures, io,
};

async fn run_script(
    peers: &Peers,
    script: &Path,
    event: &Value,
    work: &Path,
) -> Result<(f64, Option<u64>, usize, usize, String), RealError> {
    std::fs::create_dir_all(work).map_err(io("creating the baseline's /tmp"))?;
    let event_file = work.join("event.json");
    std::fs::write(&event_file, event.to_string()).map_err(io("writing the event"))?;
    let rss_file = work.join("rss.txt");
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args(["-f", "%M", "-o"])
        .arg(&rss_file)
        .arg("bash")
        .arg(script)
        .arg(&event_file)
        .envs(peers.moto.env())
        .env("WORK", work)
        .env("SIM_SERVER", &peers.server.url)
        .stdin(Stdio::null());
    let before = peers.sim.requests().len();
    let writes_before = peers.sim.write_count();
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .map_err(|e| RealError::Flow(format!("the baseline step's thread: {e}")))?
        .map_err(io(format!("running {}", script.display())))?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if !out.status.success() {
        return Err(RealError::Command {
            command: script.display().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let rss = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()));
    Ok((
        ms,
        rss,
        peers.sim.requests().len().saturating_sub(before),
        peers.sim.write_count().saturating_sub(writes_before),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    ))
}

pub(super) async fn run_baseline(
    cfg: &RealConfig,
    peers: &Peers,
) -> Result<BaselineRun, RealError> {
    let mut run = BaselineRun::default();
    let switch = cfg.baseline_dir.join("deploy_and_switch.sh");
    let remove = cfg.baseline_dir.join("remove_old_version.sh");
    // One sandbox per function: its /tmp (and kubectl's discovery cache) persists
    // between its invocations, as in a warm Lambda sandbox.
    let switch_work = cfg.work.join("baseline-deploy-and-switch");
    let remove_work = cfg.work.join("baseline-remove-old-version");
    let mut fresh_switch = true;
    let mut fresh_remove = true;
    for version in 1..=(cfg.baseline_deployments + 1) {
        let mut event = fixtures::deploy_document(&fixtures::image(version as u32));
        if let Some(m) = event.as_object_mut() {
            m.remove("check_interval");
            m.insert(
                "kubernetes_namespace".into(),
                Value::from(BASELINE_NAMESPACE),
            );
        }
        let mut percentage = 0u64;
        let mut step = 0;
        while percentage < 100 {
            step += 1;
            event["deployment"] = json!({"new_version": version, "current_percentage": percentage});
            let (ms, rss, requests, writes, out) =
                run_script(peers, &switch, &event, &switch_work).await?;
            percentage = out.parse().unwrap_or(100);
            run.steps.push(BaselineStep {
                function: "deploy-and-switch".into(),
                deployment: version,
                step,
                weight: percentage,
                ms,
                max_rss_kib: rss,
                requests,
                writes,
                fresh_discovery_cache: std::mem::take(&mut fresh_switch),
            });
        }
        if version > 1 {
            event["deployment"] =
                json!({"new_version": version, "current_percentage": 100, "is_healthy": true});
            let (ms, rss, requests, writes, _) =
                run_script(peers, &remove, &event, &remove_work).await?;
            run.steps.push(BaselineStep {
                function: "remove-old-version".into(),
                deployment: version,
                step: step + 1,
                weight: 100,
                ms,
                max_rss_kib: rss,
                requests,
                writes,
                fresh_discovery_cache: std::mem::take(&mut fresh_remove),
            });
        }
    }
    run.python = run_python(cfg, peers).await?;
    Ok(run)
}

async fn run_python(cfg: &RealConfig, peers: &Peers) -> Result<Vec<PythonRun>, RealError> {
    let mut deploy = fixtures::deploy_document(&fixtures::image(2));
    if let Some(m) = deploy.as_object_mut() {
        m.remove("config_file");
        m.remove("check_interval");
    }
    deploy["deployment"] = json!({"new_version": 2, "current_percentage": 10});
    let event_file = cfg.work.join("python-event.json");
    std::fs::write(&event_file, deploy.to_string()).map_err(io("writing the event"))?;
    let mut out = Vec::new();
    for function in ["check_version", "gather_health", "update_version"] {
        for _ in 0..cfg.python_processes {
            let mut cmd = Command::new("python3");
            cmd.arg(cfg.baseline_dir.join("harness.py"))
                .arg(function)
                .arg(&event_file)
                .arg(cfg.python_calls.to_string())
                .current_dir(&cfg.baseline_dir)
                .envs(peers.moto.env())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let function = function.to_owned();
            let run = tokio::task::spawn_blocking(move || python_process(cmd, &function))
                .await
                .map_err(|e| RealError::Flow(format!("the Python harness's thread: {e}")))??;
            out.push(run);
        }
    }
    Ok(out)
}

fn python_process(mut cmd: Command, function: &str) -> Result<PythonRun, RealError> {
    use std::io::BufRead as _;
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(io("starting python3"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| RealError::Flow("python3 has no stdout".into()))?;
    let mut cold_start_ms = None;
    let mut summary = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.map_err(io("reading python3's output"))?;
        if line == "first" {
            cold_start_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        } else if let Ok(v) = serde_json::from_str::<Value>(&line) {
            summary = Some(v);
        }
    }
    let output = child
        .wait_with_output()
        .map_err(io("waiting for python3"))?;
    let (Some(cold_start_ms), Some(summary)) = (cold_start_ms, summary) else {
        return Err(RealError::Command {
            command: format!("harness.py {function}"),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    };
    Ok(PythonRun {
        function: function.to_owned(),
        cold_start_ms,
        calls_ms: summary["calls_ms"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default(),
        import_ms: summary["import_ms"].as_f64().unwrap_or(0.0),
        vmhwm_kib: summary["vmhwm_kib"].as_u64(),
        result: summary["result"].clone(),
    })
}

pub(super) fn version_of(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|e| format!("not available: {e}"))
}
