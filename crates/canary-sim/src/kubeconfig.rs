//! A kubeconfig for a served simulated cluster, accepted by kubectl and by
//! `kube::Config::from_custom_kubeconfig`: plain http, a static token, one context.

/// The kubeconfig YAML for a simulated cluster at `url` (e.g. `http://127.0.0.1:PORT`),
/// with `namespace` as the context's default namespace. The token is a placeholder:
/// the simulator accepts any.
pub fn kubeconfig_yaml(url: &str, namespace: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: canary-sim
  cluster:
    server: \"{url}\"
users:
- name: canary-sim
  user:
    token: canary-sim-token
contexts:
- name: canary-sim
  context:
    cluster: canary-sim
    user: canary-sim
    namespace: \"{namespace}\"
current-context: canary-sim
preferences: {{}}
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubeconfig_names_the_server_and_namespace() {
        let yaml = kubeconfig_yaml("http://127.0.0.1:1234", "yelb");
        assert!(yaml.contains("server: \"http://127.0.0.1:1234\""));
        assert!(yaml.contains("namespace: \"yelb\""));
        assert!(yaml.contains("current-context: canary-sim"));
    }
}
