//! Traffic providers: everything eks-canary knows about the shape of a route object.
//!
//! A provider is one file here implementing [`RouteProvider`], pure (no I/O): it
//! recognises its route objects, writes the text that replaces `${CANARY_ROUTES}` in a
//! template, reads every target list of a route back, rewrites them all to a new split
//! (every route of every kind, every other field kept), and reads what the controller
//! says of the route ([`RouteStatus`]). Rendering (`crate::render`), the router loop
//! (canary-kube), the demo, the simulated cluster's traffic and the benchmark all go
//! through this trait; nothing else knows the names of the fields that hold weights.
//!
//! A provider is used through [`TrafficProvider`], a copyable handle that prints,
//! compares and (de)serializes as the provider's deploy.json name. Adding a provider is
//! one new file (a unit struct implementing [`RouteProvider`] and a `pub const` handle)
//! plus its line in [`REGISTRY`] (and its `mod` line). `docs/architecture.md` walks
//! through it.

pub mod appmesh;
pub mod gateway_api;

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::labels;

/// Every provider eks-canary knows, in the order they are tried and listed.
pub const REGISTRY: &[TrafficProvider] = &[appmesh::APP_MESH, gateway_api::GATEWAY_API];

/// One weighted destination of a route: the VirtualNode or Service `name` takes
/// `weight` percent of the traffic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Target {
    /// `<service>-<version>`: the VirtualNode or Service that takes this share.
    pub name: String,
    /// The share of traffic, in percent.
    pub weight: u8,
}

impl Target {
    /// A target named `name` with `weight`.
    pub fn new(name: impl Into<String>, weight: u8) -> Self {
        Self {
            name: name.into(),
            weight,
        }
    }
}

/// One version's share of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// The version.
    pub version: u32,
    /// Its share of the traffic, in percent.
    pub weight: u8,
}

impl Share {
    /// The route target of this share for `service`.
    pub fn target(&self, service: &str) -> Target {
        Target::new(labels::versioned_name(service, self.version), self.weight)
    }
}

/// The split with the canary at `weight` percent: the stable version (if any) first,
/// taking the rest, then the canary. Without a stable version the canary is alone and
/// takes `weight` as given (a first deployment renders it at 100).
pub fn split(stable: Option<u32>, canary: u32, weight: u8) -> Vec<Share> {
    let weight = weight.min(100);
    let mut out = Vec::with_capacity(2);
    if let Some(stable) = stable {
        out.push(Share {
            version: stable,
            weight: 100 - weight,
        });
    }
    out.push(Share {
        version: canary,
        weight,
    });
    out
}

/// [`split`] as route targets of `service`.
pub fn split_targets(service: &str, stable: Option<u32>, canary: u32, weight: u8) -> Vec<Target> {
    split(stable, canary, weight)
        .iter()
        .map(|s| s.target(service))
        .collect()
}

/// `[a=90, b=10]`.
pub fn describe(targets: &[Target]) -> String {
    let parts: Vec<String> = targets
        .iter()
        .map(|t| format!("{}={}", t.name, t.weight))
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Targets that are not a traffic split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid weights {targets}: {message}")]
pub struct SplitError {
    /// The targets as asked, e.g. `[ui-1=90, ui-2=10]`.
    pub targets: String,
    /// What is wrong with them.
    pub message: String,
}

/// Checks that `targets` is a traffic split: at least one, distinct non-empty names,
/// weights summing to 100.
pub fn check_split(targets: &[Target]) -> Result<(), SplitError> {
    let fail = |message: String| {
        Err(SplitError {
            targets: describe(targets),
            message,
        })
    };
    if targets.is_empty() {
        return fail("at least one target is needed".into());
    }
    let mut names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    if names.iter().any(|n| n.is_empty()) {
        return fail("a target has an empty name".into());
    }
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return fail(format!("target `{}` appears twice", w[0]));
    }
    let sum: u32 = targets.iter().map(|t| u32::from(t.weight)).sum();
    if sum != 100 {
        return fail(format!("the weights sum to {sum}, not 100"));
    }
    Ok(())
}

/// The weights of every target list added up per target name, in order of first
/// appearance (what a data plane sends to each destination, relative to the others).
pub fn total_weights(lists: &[Vec<Target>]) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    for t in lists.iter().flatten() {
        match out.iter_mut().find(|(n, _)| *n == t.name) {
            Some((_, w)) => *w += u64::from(t.weight),
            None => out.push((t.name.clone(), u64::from(t.weight))),
        }
    }
    out
}

/// The targets and weights of a route object, read by its provider and added up per
/// target ([`total_weights`]). An object no provider owns, or one its provider cannot
/// read, routes nothing: empty.
pub fn route_weights(route: &Value) -> Vec<(String, u64)> {
    TrafficProvider::of_object(route)
        .and_then(|p| p.read(route).ok())
        .map(|lists| total_weights(&lists))
        .unwrap_or_default()
}

/// A route object that does not have the shape its provider expects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("route {kind} `{name}`: {message}")]
pub struct ShapeError {
    /// The route's kind.
    pub kind: String,
    /// The route's name.
    pub name: String,
    /// What is missing or wrong.
    pub message: String,
}

impl ShapeError {
    /// An error about `route` (its kind and name read from it, `default_kind` when it
    /// has none).
    pub fn of(route: &Value, default_kind: &str, message: impl Into<String>) -> Self {
        Self {
            kind: route["kind"].as_str().unwrap_or(default_kind).to_owned(),
            name: route["metadata"]["name"].as_str().unwrap_or("?").to_owned(),
            message: message.into(),
        }
    }
}

/// What the controller says of a route object, read from its `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RouteStatus {
    /// The controller accepted the route at `observed_generation`.
    Accepted {
        /// The generation the controller has seen.
        observed_generation: i64,
    },
    /// The controller refused the route: `reason` is the failing condition, its reason
    /// and message ("ResolvedRefs=False: BackendNotFound: ..."), about the route as it
    /// was at `observed_generation` (`None`: the controller did not say which).
    Refused {
        /// What the controller said.
        reason: String,
        /// The generation the refusal is about.
        observed_generation: Option<i64>,
    },
    /// No verdict from the controller for the current generation yet.
    Pending,
}

/// What a route's status says of one generation of it (see [`RouteStatus::of_generation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenerationStatus {
    /// The controller accepted this generation (or a newer one).
    Accepted,
    /// The controller refused this generation (or a newer one): the reason.
    Refused(String),
    /// Not yet known: no status, or a status about an older generation.
    Pending,
}

impl RouteStatus {
    /// Whether the controller has accepted `generation` (or a newer one).
    pub fn confirms(&self, generation: i64) -> bool {
        matches!(self, Self::Accepted { observed_generation } if *observed_generation >= generation)
    }

    /// What this status says of `generation`. A refusal of an older generation (or of an
    /// unknown one) is not a refusal of this one: the controller has not looked at it
    /// yet, and the spec that was refused may be gone (a rollback rewrites a route whose
    /// canary backend was refused). It stays pending.
    pub fn of_generation(&self, generation: i64) -> GenerationStatus {
        match self {
            Self::Accepted { .. } if self.confirms(generation) => GenerationStatus::Accepted,
            Self::Refused {
                reason,
                observed_generation: Some(g),
            } if *g >= generation => GenerationStatus::Refused(reason.clone()),
            _ => GenerationStatus::Pending,
        }
    }

    /// The status in a few words, for messages ("accepted at generation 4", "refused at
    /// generation 3: ...", "no status").
    pub fn describe(&self) -> String {
        match self {
            Self::Accepted {
                observed_generation,
            } => format!("accepted at generation {observed_generation}"),
            Self::Refused {
                reason,
                observed_generation: Some(g),
            } => format!("refused at generation {g}: {reason}"),
            Self::Refused { reason, .. } => format!("refused: {reason}"),
            Self::Pending => "no status for it".to_owned(),
        }
    }
}

/// One traffic provider's knowledge of its route objects. Pure: no I/O.
pub trait RouteProvider: Sync + 'static {
    /// The provider's name in deploy.json (`traffic_provider`).
    fn name(&self) -> &'static str;

    /// The route objects it owns, for messages ("an App Mesh VirtualRouter
    /// (appmesh.k8s.aws)").
    fn route_objects(&self) -> &'static str;

    /// Whether a route object of `api_version` and `kind` is this provider's.
    fn owns(&self, api_version: &str, kind: &str) -> bool;

    /// Where the target lists are in its route objects, for messages.
    fn target_lists_path(&self) -> &'static str;

    /// Whether a new target needs the port of the Service of its name (looked up in the
    /// template when rendering, in the cluster when rewriting).
    fn needs_port(&self) -> bool {
        false
    }

    /// The text that replaces `${CANARY_ROUTES}`: one flow mapping per target, joined
    /// by `, ` (the template puts it inside `[...]` or alone).
    fn render_targets(&self, targets: &[Target], port: Option<u16>) -> String;

    /// Every target list of `route`, in order. A target without a weight has the weight
    /// the provider's specification gives it.
    fn read(&self, route: &Value) -> Result<Vec<Vec<Target>>, ShapeError>;

    /// Target names that need a port looked up before [`RouteProvider::rewrite`] (those
    /// absent from the route, for a provider that [`RouteProvider::needs_port`]).
    fn names_needing_port(&self, _route: &Value, _targets: &[Target]) -> Vec<String> {
        Vec::new()
    }

    /// `route` with every target list replaced by exactly `targets`; every other field
    /// kept. `ports` holds the ports looked up for [`RouteProvider::names_needing_port`].
    fn rewrite(
        &self,
        route: &Value,
        targets: &[Target],
        ports: &BTreeMap<String, u16>,
    ) -> Result<Value, ShapeError>;

    /// What the controller says of `route` (its `status`).
    fn status(&self, route: &Value) -> RouteStatus;

    /// A minimal route object of this provider, `name` in `namespace`, whose one route
    /// (or rule) sends traffic to `targets` (on `port`, for a provider that needs one):
    /// for fixtures, the simulator and tests.
    fn minimal_route(&self, name: &str, namespace: &str, targets: &[Target], port: u16) -> Value;
}

/// A registered traffic provider: a copyable handle that derefs to its
/// [`RouteProvider`] and prints, compares and (de)serializes as its name.
#[derive(Clone, Copy)]
pub struct TrafficProvider(&'static dyn RouteProvider);

impl TrafficProvider {
    /// The provider called `name` in deploy.json.
    pub fn named(name: &str) -> Option<Self> {
        REGISTRY.iter().copied().find(|p| p.name() == name)
    }

    /// The provider that owns route objects of `api_version` and `kind`.
    pub fn for_route(api_version: &str, kind: &str) -> Option<Self> {
        REGISTRY.iter().copied().find(|p| p.owns(api_version, kind))
    }

    /// The provider of the route object `route` (by its `apiVersion` and `kind`).
    pub fn of_object(route: &Value) -> Option<Self> {
        Self::for_route(
            route["apiVersion"].as_str().unwrap_or_default(),
            route["kind"].as_str().unwrap_or_default(),
        )
    }

    /// Every provider's name, for messages and near matches.
    pub fn names() -> Vec<&'static str> {
        REGISTRY.iter().map(|p| p.name()).collect()
    }

    /// The name used in deploy.json.
    pub fn as_str(self) -> &'static str {
        self.0.name()
    }
}

impl std::ops::Deref for TrafficProvider {
    type Target = dyn RouteProvider;

    fn deref(&self) -> &Self::Target {
        self.0
    }
}

impl PartialEq for TrafficProvider {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for TrafficProvider {}

impl Hash for TrafficProvider {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl fmt::Debug for TrafficProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrafficProvider({})", self.name())
    }
}

impl fmt::Display for TrafficProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for TrafficProvider {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for TrafficProvider {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::named(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown traffic provider `{name}` (known: {})",
                Self::names().join(", ")
            ))
        })
    }
}

/// A weight read from a target: `default` when it has none; an error when it is not a
/// whole number in 0..=255.
pub(crate) fn weight_of(
    route: &Value,
    default_kind: &str,
    target: &Value,
    default: u8,
) -> Result<u8, ShapeError> {
    match &target["weight"] {
        Value::Null => Ok(default),
        w => w
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(|| {
                ShapeError::of(
                    route,
                    default_kind,
                    format!("weight {w} is not a number in 0..=255"),
                )
            }),
    }
}

/// The `status` of a Kubernetes condition list entry of `type_`: `(status, reason,
/// message, observedGeneration)`.
pub(crate) fn condition<'a>(
    conditions: &'a Value,
    type_: &str,
) -> Option<(&'a str, &'a str, &'a str, Option<i64>)> {
    conditions
        .as_array()?
        .iter()
        .find(|c| c["type"].as_str() == Some(type_))
        .map(|c| {
            (
                c["status"].as_str().unwrap_or("Unknown"),
                c["reason"].as_str().unwrap_or(""),
                c["message"].as_str().unwrap_or(""),
                c["observedGeneration"].as_i64(),
            )
        })
}

/// A refusal's words: "Type=False: Reason: message", without the parts the controller
/// left empty.
pub(crate) fn refusal(type_: &str, reason: &str, message: &str) -> String {
    let mut out = format!("{type_}=False");
    for part in [reason, message] {
        if !part.is_empty() {
            out.push_str(": ");
            out.push_str(part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_must_be_distinct_names_summing_to_100() {
        let ok = [
            vec![Target::new("a-1", 100)],
            vec![Target::new("a-1", 90), Target::new("a-2", 10)],
        ];
        for t in ok {
            assert!(check_split(&t).is_ok(), "{}", describe(&t));
        }
        let bad = [
            vec![],
            vec![Target::new("a-1", 90)],
            vec![Target::new("a-1", 50), Target::new("a-1", 50)],
            vec![Target::new("", 100)],
            vec![Target::new("a-1", 100), Target::new("a-2", 100)],
        ];
        for t in bad {
            assert!(check_split(&t).is_err(), "{}", describe(&t));
        }
    }

    #[test]
    fn route_kinds_select_their_provider() {
        let of = |api: &str, kind: &str| TrafficProvider::for_route(api, kind).map(|p| p.as_str());
        assert_eq!(
            of("appmesh.k8s.aws/v1beta2", "VirtualRouter"),
            Some("appmesh")
        );
        assert_eq!(
            of("gateway.networking.k8s.io/v1", "HTTPRoute"),
            Some("gateway-api")
        );
        assert_eq!(
            of("gateway.networking.k8s.io/v1", "GRPCRoute"),
            Some("gateway-api")
        );
        assert_eq!(of("v1", "Service"), None);
    }

    #[test]
    fn a_provider_handle_round_trips_through_its_name() -> Result<(), serde_json::Error> {
        for p in REGISTRY {
            let json = serde_json::to_string(p)?;
            assert_eq!(json, format!("\"{}\"", p.as_str()));
            let back: TrafficProvider = serde_json::from_str(&json)?;
            assert_eq!(back, *p);
        }
        assert!(serde_json::from_str::<TrafficProvider>("\"istio-vs\"").is_err());
        Ok(())
    }

    #[test]
    fn the_stable_version_takes_what_the_canary_does_not() {
        assert_eq!(
            split_targets("ui", Some(1), 2, 30),
            vec![Target::new("ui-1", 70), Target::new("ui-2", 30)]
        );
        assert_eq!(
            split_targets("ui", None, 1, 100),
            vec![Target::new("ui-1", 100)]
        );
        assert_eq!(
            split_targets("ui", Some(1), 2, 250),
            vec![Target::new("ui-1", 0), Target::new("ui-2", 100)]
        );
    }

    #[test]
    fn weights_are_added_up_per_target_across_lists() {
        let lists = vec![
            vec![Target::new("a", 90), Target::new("b", 10)],
            vec![Target::new("b", 100)],
        ];
        assert_eq!(
            total_weights(&lists),
            vec![("a".to_owned(), 90), ("b".to_owned(), 110)]
        );
    }
}
