//! Diagnostics for a failed scenario: pod logs (and the previous container's),
//! events, the scenario's RayClusters, Services and Ingresses as YAML, the
//! ingress controller's logs and rendered nginx.conf, and istio-proxy
//! status — written into the scenario's artifacts folder.

use super::raycluster;
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, AttachParams, DynamicObject, ListParams, LogParams};
use kube::{Client, ResourceExt};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Namespace of the ingress-nginx controller.
pub const INGRESS_NGINX_NAMESPACE: &str = "ingress-nginx";
/// Label selector of the ingress-nginx controller pods.
pub const INGRESS_NGINX_SELECTOR: &str = "app.kubernetes.io/component=controller";

/// Bound for each diagnostics request: diagnostics must never hang a run.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Log lines kept per container.
const LOG_TAIL_LINES: i64 = 2000;

/// Collects everything about `namespace` (plus the ingress controller, when
/// present) into `dir`; returns the files written. Problems become lines
/// in `errors.txt` instead of failing.
pub async fn collect(client: &Client, namespace: &str, dir: &Path) -> Vec<PathBuf> {
    let mut out = Collector {
        dir: dir.to_path_buf(),
        written: Vec::new(),
        errors: Vec::new(),
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        tracing::warn!("cannot create {}: {e}", dir.display());
        return Vec::new();
    }
    out.namespace_objects(client, namespace).await;
    out.pods(client, namespace, "").await;
    out.ingress_controller(client).await;
    if !out.errors.is_empty() {
        let text = out.errors.join("\n") + "\n";
        out.write("errors.txt", &text);
    }
    out.written
}

struct Collector {
    dir: PathBuf,
    written: Vec<PathBuf>,
    errors: Vec<String>,
}

impl Collector {
    fn write(&mut self, name: &str, text: &str) {
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        match std::fs::write(&path, text) {
            Ok(()) => self.written.push(path),
            Err(e) => self.errors.push(format!("write {}: {e}", path.display())),
        }
    }

    async fn namespace_objects(&mut self, client: &Client, ns: &str) {
        let events: Api<Event> = Api::namespaced(client.clone(), ns);
        match bounded(events.list(&ListParams::default())).await {
            Ok(list) => {
                let mut items = list.items;
                items.sort_by_key(|e| e.last_timestamp.clone().map(|t| t.0));
                let text: String = items
                    .iter()
                    .map(|e| {
                        format!(
                            "{} {} {}/{} {}: {}\n",
                            e.last_timestamp
                                .as_ref()
                                .map(|t| t.0.to_string())
                                .unwrap_or_default(),
                            e.type_.clone().unwrap_or_default(),
                            e.involved_object.kind.clone().unwrap_or_default(),
                            e.involved_object.name.clone().unwrap_or_default(),
                            e.reason.clone().unwrap_or_default(),
                            e.message.clone().unwrap_or_default()
                        )
                    })
                    .collect();
                self.write("events.txt", &text);
            }
            Err(e) => self.errors.push(format!("events: {e}")),
        }
        let services: Api<Service> = Api::namespaced(client.clone(), ns);
        match bounded(services.list(&ListParams::default())).await {
            Ok(list) => self.write("services.yaml", &to_yaml_list(&list.items)),
            Err(e) => self.errors.push(format!("services: {e}")),
        }
        let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
        match bounded(ingresses.list(&ListParams::default())).await {
            Ok(list) => self.write("ingresses.yaml", &to_yaml_list(&list.items)),
            Err(e) => self.errors.push(format!("ingresses: {e}")),
        }
        let rayclusters: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), ns, &raycluster::api_resource());
        match bounded(rayclusters.list(&ListParams::default())).await {
            Ok(list) => self.write("rayclusters.yaml", &to_yaml_list(&list.items)),
            // No KubeRay CRD: nothing to collect.
            Err(RequestError::Api(kube::Error::Api(s))) if s.code == 404 => {}
            Err(e) => self.errors.push(format!("rayclusters: {e}")),
        }
    }

    /// Pod objects, their logs (current and previous), istio-proxy status.
    async fn pods(&mut self, client: &Client, ns: &str, selector: &str) {
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let list = match bounded(pods.list(&ListParams::default().labels(selector))).await {
            Ok(list) => list.items,
            Err(e) => {
                self.errors.push(format!("pods in {ns}: {e}"));
                return;
            }
        };
        self.write(&format!("{ns}/pods.yaml"), &to_yaml_list(&list));
        for pod in &list {
            let name = pod.name_any();
            let containers: Vec<String> = pod
                .spec
                .iter()
                .flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers))
                .map(|c| c.name.clone())
                .collect();
            for container in &containers {
                for previous in [false, true] {
                    let params = LogParams {
                        container: Some(container.clone()),
                        previous,
                        tail_lines: Some(LOG_TAIL_LINES),
                        ..LogParams::default()
                    };
                    let suffix = if previous { ".previous" } else { "" };
                    match bounded(pods.logs(&name, &params)).await {
                        Ok(text) => {
                            self.write(&format!("{ns}/logs/{name}.{container}{suffix}.log"), &text)
                        }
                        // There is no previous container unless one restarted.
                        Err(_) if previous => {}
                        Err(e) => self
                            .errors
                            .push(format!("logs {ns}/{name}/{container}: {e}")),
                    }
                }
            }
            if containers.iter().any(|c| c == "istio-proxy") {
                let argv = ["pilot-agent", "request", "GET", "server_info"];
                let file = format!("{ns}/istio-proxy/{name}.server_info.json");
                self.exec_to_file(&pods, &name, "istio-proxy", &argv, &file)
                    .await;
            }
        }
    }

    async fn ingress_controller(&mut self, client: &Client) {
        let ns = INGRESS_NGINX_NAMESPACE;
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let params = ListParams::default().labels(INGRESS_NGINX_SELECTOR);
        let Ok(list) = bounded(pods.list(&params)).await else {
            return; // no controller installed
        };
        if list.items.is_empty() {
            return;
        }
        self.pods(client, ns, INGRESS_NGINX_SELECTOR).await;
        for pod in &list.items {
            let name = pod.name_any();
            let file = format!("{ns}/{name}.nginx.conf");
            self.exec_to_file(
                &pods,
                &name,
                "controller",
                &["cat", "/etc/nginx/nginx.conf"],
                &file,
            )
            .await;
        }
    }

    async fn exec_to_file(
        &mut self,
        pods: &Api<Pod>,
        pod: &str,
        container: &str,
        argv: &[&str],
        file: &str,
    ) {
        match exec_output(pods, pod, container, argv).await {
            Ok(text) => self.write(file, &text),
            Err(e) => self
                .errors
                .push(format!("exec {} in {pod}/{container}: {e}", argv.join(" "))),
        }
    }
}

/// Why a diagnostics request (or a command run in a container) gave no
/// answer.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The API server refused or could not be reached.
    #[error("{0}")]
    Api(#[from] kube::Error),
    /// The command started but offered no stdout stream.
    #[error("no stdout stream")]
    NoStdout,
    /// Reading the command's output failed.
    #[error("{0}")]
    Read(#[from] std::io::Error),
    /// No answer within the bound.
    #[error("no answer within {}s", .0.as_secs())]
    Timeout(Duration),
}

/// Runs `argv` in a container and returns its stdout (bounded in time).
pub async fn exec_output(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    argv: &[&str],
) -> Result<String, RequestError> {
    let params = AttachParams::default()
        .container(container)
        .stdout(true)
        .stderr(false)
        .stdin(false);
    let run = async {
        let mut process = pods.exec(pod, argv.iter().copied(), &params).await?;
        let mut stdout = process.stdout().ok_or(RequestError::NoStdout)?;
        let mut text = String::new();
        stdout.read_to_string(&mut text).await?;
        let _ = process.join().await;
        Ok::<String, RequestError>(text)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, run)
        .await
        .map_err(|_| RequestError::Timeout(REQUEST_TIMEOUT))?
}

async fn bounded<T>(
    request: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, RequestError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(RequestError::Timeout(REQUEST_TIMEOUT)),
    }
}

/// Objects as one multi-document YAML text, without `managedFields`.
fn to_yaml_list<T: serde::Serialize>(items: &[T]) -> String {
    items
        .iter()
        .map(|item| {
            let mut value = serde_json::to_value(item).unwrap_or_default();
            if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                meta.remove("managedFields");
            }
            serde_saphyr::to_string(&value).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_errors_read_as_before() {
        assert_eq!(
            RequestError::Timeout(REQUEST_TIMEOUT).to_string(),
            "no answer within 20s"
        );
        assert_eq!(RequestError::NoStdout.to_string(), "no stdout stream");
    }
}
