//! `canary cluster-sim`: the simulated cluster served on loopback with the real clock
//! until Ctrl-C (or SIGTERM), and its kubeconfig written for kubectl and
//! `canary run --kubeconfig`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use canary_sim::{SimCluster, SimConfig, kubeconfig_yaml};

use crate::error::CliError;

/// `canary cluster-sim`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterSimArgs {
    /// Where to listen (loopback; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Where to write the kubeconfig for kubectl and `canary run --kubeconfig`.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig_out: std::path::PathBuf,
    /// Seconds for a Deployment to become ready after a change.
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    pub ready_delay: f64,
    /// The kubeconfig context's default namespace.
    #[arg(long, default_value = "default")]
    pub namespace: String,
}

/// Serves the simulated cluster on the real clock until Ctrl-C (or SIGTERM).
pub async fn serve_cluster_sim(args: &ClusterSimArgs) -> Result<(), CliError> {
    if !args.ready_delay.is_finite() || args.ready_delay < 0.0 {
        return Err(CliError::Failed(format!(
            "invalid --ready-delay `{}`: must be a number of seconds, 0 or more",
            args.ready_delay
        )));
    }
    let config = SimConfig::new(
        Arc::new(canary_core::clock::SystemClock),
        Duration::from_secs_f64(args.ready_delay),
    );
    let sim = SimCluster::new(config);
    let server = sim
        .serve(args.listen)
        .await
        .map_err(|source| CliError::Listen {
            addr: args.listen,
            source,
        })?;
    let yaml = kubeconfig_yaml(&server.url, &args.namespace);
    let path = &args.kubeconfig_out;
    // Written whole, then renamed: whoever waits for the file never reads half of it.
    let tmp = path.with_extension("tmp");
    let written = |path: &std::path::Path| {
        let path = path.to_owned();
        move |source| CliError::Written { path, source }
    };
    std::fs::write(&tmp, yaml).map_err(written(&tmp))?;
    std::fs::rename(&tmp, path).map_err(written(path))?;
    println!("simulated cluster serving at {}", server.url);
    println!(
        "Prometheus metrics of its traffic at {}/metrics",
        server.url
    );
    println!("kubeconfig written to {}", path.display());
    println!(
        "  kubectl --kubeconfig {} get deployments -A",
        path.display()
    );
    println!("Press Ctrl-C to stop.");
    let stop = async {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(CliError::Signal)?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r.map_err(CliError::Signal),
                _ = term.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.map_err(CliError::Signal)
        }
    };
    let result = stop.await;
    server.shutdown().await;
    println!("stopped ({} requests served)", sim.requests().len());
    result
}
