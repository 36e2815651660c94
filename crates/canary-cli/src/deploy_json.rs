//! The commands on a deploy.json that touch nothing: `canary validate`, `canary render`,
//! `canary plan` and `canary prepare`, and the reading of a deploy.json (with the
//! template and the image a person adds on the command line) that the other commands
//! share.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine as _;
use canary_core::render::{self, RenderParams};
use canary_core::schedule;
use canary_core::spec::ParseOptions;
use canary_core::{DeploySpec, Scope};
use canary_metrics::{HealthQuery, described_queries};
use serde_json::Value;

use crate::error::CliError;
use crate::format::{clock, pretty};

/// What a person adds to a deploy.json that the pipeline's build step has not prepared.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Inputs {
    /// The Kubernetes template as a plain file, instead of `config_file`.
    #[arg(long)]
    pub template: Option<PathBuf>,
    /// The image, instead of `container_image`.
    #[arg(long)]
    pub image: Option<String>,
}

/// How `canary render` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

/// `canary render`: the objects the cluster will receive for `version` at `weight`
/// (default: 0 beside a stable version, else 100).
pub fn render_command(
    deploy_json: &Path,
    inputs: &Inputs,
    version: u32,
    stable_version: Option<u32>,
    weight: Option<u8>,
    output: Format,
) -> Result<ExitCode, CliError> {
    let spec = load(deploy_json, inputs, false)?;
    let weight = weight.unwrap_or(if stable_version.is_some() { 0 } else { 100 });
    let rendered = render::render(
        &spec,
        &RenderParams {
            version,
            stable_version,
            canary_weight: weight,
        },
    )?;
    match output {
        Format::Yaml => print!("{}", rendered.to_yaml()),
        Format::Json => println!("{}", pretty(&rendered.to_json())),
    }
    Ok(ExitCode::SUCCESS)
}

/// `canary plan`: the steps and their times, after checking the template if there is one.
pub fn plan_command(deploy_json: &Path, inputs: &Inputs) -> Result<ExitCode, CliError> {
    let spec = load(deploy_json, inputs, true)?;
    if !spec.template.is_empty() {
        check_template(&spec)?;
    }
    print!("{}", plan_table(&spec));
    Ok(ExitCode::SUCCESS)
}

/// What a pipeline's build owns: the service, namespace and cluster its stack names
/// (CodeBuild's `CANARY_SERVICE`, `CANARY_NAMESPACE`, `CANARY_CLUSTER`). `canary
/// prepare` refuses a deploy.json that names anything else; one not given (a build of
/// an older stack, a person at a terminal) is not checked.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Owner {
    /// The service this pipeline owns: deploy.json's microservice_name must be it.
    #[arg(long = "service", env = "CANARY_SERVICE")]
    pub service: Option<String>,
    /// The namespace this pipeline owns: deploy.json's kubernetes_namespace must be it.
    #[arg(long = "namespace", env = "CANARY_NAMESPACE")]
    pub namespace: Option<String>,
    /// The cluster this pipeline owns: deploy.json's cluster_name must be it.
    #[arg(long = "cluster", env = "CANARY_CLUSTER")]
    pub cluster: Option<String>,
}

impl Owner {
    /// Every field of `spec` that differs from what this build owns, in one message;
    /// and, with both namespace and service, whether the pipeline's execution names
    /// (`<namespace>_<service>_-<id>`) fit in the 80 characters Step Functions allows.
    pub fn check(&self, spec: &DeploySpec) -> Result<(), CliError> {
        let fields = [
            (
                "microservice_name",
                &spec.microservice_name,
                &self.service,
                "--service / CANARY_SERVICE",
            ),
            (
                "kubernetes_namespace",
                &spec.kubernetes_namespace,
                &self.namespace,
                "--namespace / CANARY_NAMESPACE",
            ),
            (
                "cluster_name",
                &spec.cluster_name,
                &self.cluster,
                "--cluster / CANARY_CLUSTER",
            ),
        ];
        let wrong: Vec<String> = fields
            .iter()
            .filter_map(|(field, given, owned, source)| match owned {
                Some(owned) if owned.is_empty() => Some(format!(
                    "this pipeline's {source} is empty (it must name what the pipeline owns)"
                )),
                Some(owned) if owned != *given => Some(format!(
                    "deploy.json's {field} is {given} but this pipeline owns {owned} ({source})"
                )),
                _ => None,
            })
            .collect();
        if !wrong.is_empty() {
            return Err(CliError::Usage(format!(
                "{}; a pipeline deploys only its own service",
                wrong.join("; ")
            )));
        }
        if let (Some(namespace), Some(service)) = (&self.namespace, &self.service) {
            render_template::owner::pipeline_prefix(namespace, service).map_err(CliError::Usage)?;
        }
        Ok(())
    }
}

/// `canary prepare`: the pipeline's deploy.json, to `output` or standard output, after
/// checking that it deploys what the build owns.
pub fn prepare_command(
    spec_dir: &Path,
    image: &str,
    owner: &Owner,
    output: Option<&Path>,
) -> Result<ExitCode, CliError> {
    let (doc, spec) = prepare_document(spec_dir, image)?;
    owner.check(&spec)?;
    let text = format!("{}\n", pretty(&doc));
    match output {
        Some(path) => fs::write(path, text).map_err(CliError::io(path))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads and validates deploy.json, with the template and image from the command line
/// if given. `artifacts_optional` accepts a deploy.json without image and template.
pub fn load(
    path: &Path,
    inputs: &Inputs,
    artifacts_optional: bool,
) -> Result<DeploySpec, CliError> {
    let text = fs::read_to_string(path).map_err(CliError::io(path))?;
    let template = inputs
        .template
        .as_ref()
        .map(|t| fs::read_to_string(t).map_err(CliError::io(t)))
        .transpose()?;
    let options = ParseOptions {
        template: template.as_deref(),
        image: inputs.image.as_deref(),
        artifacts_optional,
    };
    Ok(DeploySpec::parse_str(&text, &options)?)
}

/// Renders a first deployment and a canary, so that template errors show up now.
fn check_template(spec: &DeploySpec) -> Result<canary_core::Rendered, CliError> {
    let first_weight = schedule::schedule(spec, false)
        .first()
        .copied()
        .unwrap_or(100);
    Ok(render::render_both(spec, first_weight)?)
}

/// `canary validate`: deploy.json and its template checked, one line said about them.
pub fn validate(path: &Path, inputs: &Inputs) -> Result<ExitCode, CliError> {
    let spec = load(path, inputs, false)?;
    let rendered = check_template(&spec)?;
    let steps = schedule::schedule(&spec, false);
    let per_version = rendered
        .objects
        .iter()
        .filter(|o| o.scope == Scope::Version)
        .count();
    println!(
        "ok: {} in namespace {} on cluster {}: {} via {} {}, {} objects ({} per version), {} step{} every {} s, health from {}, image {}",
        spec.microservice_name,
        spec.kubernetes_namespace,
        spec.cluster_name,
        rendered.provider,
        rendered.route.kind,
        rendered.route.name,
        rendered.objects.len(),
        per_version,
        steps.len(),
        if steps.len() == 1 { "" } else { "s" },
        spec.wait_time,
        spec.metrics.source.name(),
        spec.container_image,
    );
    Ok(ExitCode::SUCCESS)
}

/// The plan as a table, for a person.
pub fn plan_table(spec: &DeploySpec) -> String {
    let plan = schedule::plan(spec);
    let mut out = format!(
        "Plan for {} ({} in {}): a canary beside the stable version\n\n  step  weight  from     holds   checks\n",
        spec.microservice_name, spec.cluster_name, spec.kubernetes_namespace
    );
    for (i, s) in plan.steps.iter().enumerate() {
        out.push_str(&format!(
            "  {:>4}  {:>5}%  {:>7}  {:>6}  {:>6}\n",
            i + 1,
            s.weight,
            clock(s.at_secs),
            clock(s.hold_secs),
            s.checks
        ));
    }
    out.push_str(&format!(
        "\n  times are from the moment the new version is ready (readiness may take up to {})\n",
        clock(spec.ready_timeout)
    ));
    out.push_str(&format!(
        "  full traffic on the canary after  {}\n",
        clock(plan.time_to_full_secs)
    ));
    out.push_str(&format!(
        "  promoted (old version removed) at  {}\n",
        clock(plan.total_secs)
    ));
    if !plan.gates.is_empty() {
        out.push_str(
            "  gates (`canary approve` passes one; the weight holds and checks go on while it waits):\n",
        );
        for g in &plan.gates {
            let place = match g.at {
                canary_core::spec::GateAt::Promotion => "before promotion (100%)".to_owned(),
                at => format!("at {at}"),
            };
            out.push_str(&format!(
                "    {place:<24} reached at {} at the earliest; waits up to {}, then {}\n",
                clock(g.reached_secs),
                canary_core::timing::human_duration(g.timeout_secs),
                g.on_timeout.verb()
            ));
        }
        out.push_str(&format!(
            "  with every gate waiting until its deadline, promoted at  {} at the latest\n",
            clock(plan.longest_secs)
        ));
    }
    out.push_str(&format!(
        "  health checked every {} s over the last {} s; a failure is rolled back within {} at worst\n",
        plan.check_interval_secs,
        spec.failure_threshold_time,
        clock(plan.worst_unnoticed_secs)
    ));
    out.push_str(&format!(
        "  (the original design: within {} at worst, and never once at 100%)\n",
        clock(plan.original_worst_unnoticed_secs)
    ));
    out.push_str("  a first deployment has no canary phase: it goes straight to 100% once ready\n");
    out.push_str(&health_text(spec));
    out
}

/// The health rules and what each check asks its source, for a canary version 2 beside
/// a stable version 1 (for `canary plan`).
pub fn health_text(spec: &DeploySpec) -> String {
    let mut rules = Vec::new();
    if spec.failure_threshold_value < canary_core::spec::NO_COUNT_LIMIT {
        rules.push(format!(
            "more than {} errors",
            crate::format::num(spec.failure_threshold_value)
        ));
    }
    if let Some(rate) = spec.health.max_error_rate {
        rules.push(format!("an error rate above {}%", crate::format::num(rate)));
    }
    if let Some(l) = spec.metrics.latency {
        rules.push(format!(
            "latency p{} above {} ms",
            crate::format::num(l.quantile * 100.0),
            crate::format::num(l.max_ms)
        ));
    }
    if let Some(c) = spec.metrics.compare {
        rules.push(format!(
            "an error rate higher than the stable version's by more than {} at {}% confidence",
            canary_core::compare::points(c.margin_percent),
            crate::format::num(c.confidence * 100.0)
        ));
    }
    let mut out = format!(
        "\nHealth from {}: unhealthy on {}\n",
        spec.metrics.source.name(),
        rules.join(", or ")
    );
    if let Some(min) = spec.health.min_request_count {
        out.push_str(&format!(
            "  fewer than {min} requests in a window: no_data `{}`\n",
            serde_json::to_value(spec.health.no_data)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        ));
    }
    out.push_str("  each check asks (canary version 2 beside stable version 1, for example):\n");
    let q = HealthQuery::for_check(spec, 2, 0).with_stable(spec, Some(1));
    for (what, query) in described_queries(&q) {
        out.push_str(&format!("    {what}: {query}\n"));
    }
    out
}

/// deploy.json with `container_image` and `config_file` added, validated.
pub fn prepare(spec_dir: &Path, image: &str) -> Result<Value, CliError> {
    prepare_document(spec_dir, image).map(|(doc, _)| doc)
}

/// [`prepare`] and the deploy.json it holds.
fn prepare_document(spec_dir: &Path, image: &str) -> Result<(Value, DeploySpec), CliError> {
    let deploy_path = spec_dir.join("deploy.json");
    let template_path = spec_dir.join("kubernetes_template.yml");
    let text = fs::read_to_string(&deploy_path).map_err(CliError::io(&deploy_path))?;
    let template = fs::read_to_string(&template_path).map_err(CliError::io(&template_path))?;
    with_artifacts(&deploy_path, &text, Some(image), Some(&template))
}

/// The state machine input a pipeline would send for this deploy.json: `--image` and
/// `--template` embedded as `container_image` and `config_file` when given, validated.
pub fn pipeline_input(deploy_path: &Path, inputs: &Inputs) -> Result<Value, CliError> {
    pipeline_document(deploy_path, inputs).map(|(doc, _)| doc)
}

/// [`pipeline_input`] and the deploy.json it holds.
pub fn pipeline_document(
    deploy_path: &Path,
    inputs: &Inputs,
) -> Result<(Value, DeploySpec), CliError> {
    let text = fs::read_to_string(deploy_path).map_err(CliError::io(deploy_path))?;
    let template = inputs
        .template
        .as_ref()
        .map(|t| fs::read_to_string(t).map_err(CliError::io(t)))
        .transpose()?;
    with_artifacts(
        deploy_path,
        &text,
        inputs.image.as_deref(),
        template.as_deref(),
    )
}

/// deploy.json with the image and the template (base64) added when given, then
/// validated as a complete pipeline input.
fn with_artifacts(
    deploy_path: &Path,
    text: &str,
    image: Option<&str>,
    template: Option<&str>,
) -> Result<(Value, DeploySpec), CliError> {
    let mut doc: Value = serde_json::from_str(text).map_err(|source| CliError::Json {
        path: deploy_path.to_owned(),
        source,
    })?;
    let Some(map) = doc.as_object_mut() else {
        return Err(CliError::Usage(format!(
            "{}: must be a JSON object",
            deploy_path.display()
        )));
    };
    if let Some(image) = image {
        map.insert("container_image".into(), Value::String(image.to_owned()));
    }
    if let Some(template) = template {
        map.insert(
            "config_file".into(),
            Value::String(base64::engine::general_purpose::STANDARD.encode(template.as_bytes())),
        );
    }
    let spec = DeploySpec::parse(&doc, None)?;
    check_template(&spec)?;
    Ok((doc, spec))
}
