//! The checks over one round: the lock (its writes in ETag order, never taken while
//! held, released only by its holder, no write outside a hold), isolation between
//! services, and each service's end state.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The S3 key prefix of each service, by index, and its name for messages.
pub(super) struct Layout {
    pub(super) bases: Vec<String>,
    pub(super) names: Vec<String>,
}

impl Layout {
    pub(super) fn of(world: &World) -> Self {
        let refs: Vec<ServiceRef> = world
            .services
            .iter()
            .map(LoadService::service_ref)
            .collect();
        Self {
            bases: refs
                .iter()
                .map(|r| {
                    world
                        .store
                        .lock_key(r)
                        .trim_end_matches("lock.json")
                        .to_owned()
                })
                .collect(),
            names: refs.iter().map(ToString::to_string).collect(),
        }
    }

    /// The service a key belongs to, by its prefix.
    pub(super) fn service_of(&self, key: &str) -> Option<usize> {
        self.bases.iter().position(|b| key.starts_with(b.as_str()))
    }
}

/// One take-to-release stretch of a lock, in the log's order.
#[derive(Debug)]
pub(super) struct Tenure {
    pub(super) execution: String,
    pub(super) taken_seq: u64,
    pub(super) released_seq: Option<u64>,
}

/// The lock and isolation checks over one round's writes.
pub(super) fn check_writes(
    layout: &Layout,
    writes: &[WriteRecord],
    owner: &HashMap<String, usize>,
    round: &str,
) -> Vec<String> {
    let mut v = Vec::new();
    let mut lock_writes: BTreeMap<usize, Vec<&WriteRecord>> = BTreeMap::new();
    for w in writes.iter().filter(|w| w.changed()) {
        let Some(exec) = &w.execution else {
            v.push(format!(
                "{round}: {} was written outside any execution",
                w.key
            ));
            continue;
        };
        let Some(svc) = layout.service_of(&w.key) else {
            v.push(format!(
                "{round}: {exec} wrote {}, a key of no service",
                w.key
            ));
            continue;
        };
        if owner.get(exec) != Some(&svc) {
            v.push(format!(
                "{round}: {exec} wrote {} of {}, which it does not deploy",
                w.key, layout.names[svc]
            ));
        }
        if w.key.ends_with("/lock.json") {
            lock_writes.entry(svc).or_default().push(w);
        }
    }
    // Each lock's writes in their true order: the ETag chain (each conditional put
    // names the ETag it replaced), which the log's order may swap when two writers'
    // answers arrive together.
    let mut tenures: BTreeMap<usize, Vec<Tenure>> = BTreeMap::new();
    for (svc, list) in &lock_writes {
        let name = &layout.names[*svc];
        let chain = etag_chain(list);
        let ordered: Vec<&WriteRecord> = match chain {
            Some(c) => c,
            None => {
                v.push(format!(
                    "{round}: the lock writes of {name} do not form one chain of ETags"
                ));
                list.clone()
            }
        };
        let mut holder: Option<String> = None;
        let ts = tenures.entry(*svc).or_default();
        for w in ordered {
            let WriteOp::Put { body, .. } = &w.op else {
                v.push(format!("{round}: lock.json of {name} was deleted"));
                continue;
            };
            let doc: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let writer = w.execution.clone().unwrap_or_default();
            match doc["state"].as_str() {
                Some("held") => {
                    let by = doc["execution"].as_str().unwrap_or("?");
                    if by != writer {
                        v.push(format!(
                            "{round}: {writer} wrote the lock of {name} as held by {by}"
                        ));
                    }
                    match &holder {
                        Some(h) if h != by => v.push(format!(
                            "{round}: the lock of {name} was taken by {by} while {h} held it"
                        )),
                        Some(_) => {}
                        None => ts.push(Tenure {
                            execution: by.to_owned(),
                            taken_seq: w.seq,
                            released_seq: None,
                        }),
                    }
                    holder = Some(by.to_owned());
                }
                Some("released") => {
                    if holder.as_deref() != Some(writer.as_str()) {
                        v.push(format!(
                            "{round}: {writer} released the lock of {name} held by {holder:?}"
                        ));
                    }
                    if let Some(t) = ts.last_mut() {
                        t.released_seq = Some(w.seq);
                    }
                    holder = None;
                }
                other => v.push(format!(
                    "{round}: lock.json of {name} was written with state {other:?}"
                )),
            }
        }
        if let Some(h) = holder {
            v.push(format!("{round}: the lock of {name} is still held by {h}"));
        }
    }
    // Every other write of an execution falls inside its own tenure of its service's
    // lock (its own events are in its own order in the log).
    for w in writes.iter().filter(|w| w.changed()) {
        let (Some(exec), Some(svc)) = (&w.execution, layout.service_of(&w.key)) else {
            continue;
        };
        if w.key.ends_with("/lock.json") {
            continue;
        }
        let inside = tenures.get(&svc).is_some_and(|ts| {
            ts.iter().any(|t| {
                t.execution == *exec
                    && t.taken_seq < w.seq
                    && t.released_seq.is_none_or(|r| w.seq < r)
            })
        });
        if !inside {
            v.push(format!(
                "{round}: {exec} wrote {} without holding the lock of {}",
                w.key, layout.names[svc]
            ));
        }
    }
    v
}

/// The writes that changed a lock.json, ordered by their ETag chain: the first one
/// written where no object was (or over an ETag no write of this list made), each next
/// one conditioned on the ETag the previous one produced. `None` when they do not form
/// a single chain.
pub(super) fn etag_chain<'a>(list: &[&'a WriteRecord]) -> Option<Vec<&'a WriteRecord>> {
    let produced: BTreeSet<&str> = list
        .iter()
        .filter_map(|w| match &w.op {
            WriteOp::Put { new_etag, .. } => new_etag.as_deref(),
            WriteOp::Delete => None,
        })
        .collect();
    let mut next: HashMap<&str, &'a WriteRecord> = HashMap::new();
    let mut first = Vec::new();
    for w in list {
        match &w.op {
            WriteOp::Put {
                condition: PutCondition::IfMatch(prev),
                ..
            } if produced.contains(prev.as_str()) => {
                if next.insert(prev.as_str(), w).is_some() {
                    return None;
                }
            }
            _ => first.push(*w),
        }
    }
    let [start] = first.as_slice() else {
        return None;
    };
    let mut out = vec![*start];
    let mut cur = *start;
    while let WriteOp::Put {
        new_etag: Some(e), ..
    } = &cur.op
    {
        let Some(n) = next.get(e.as_str()) else { break };
        out.push(*n);
        cur = n;
        if out.len() > list.len() {
            return None;
        }
    }
    (out.len() == list.len()).then_some(out)
}

/// The store's view of one service after the round.
pub(super) async fn check_service(
    world: &World,
    svc: &LoadService,
    winner: &str,
    v1: &str,
) -> Vec<String> {
    let mut v = Vec::new();
    let r = svc.service_ref();
    let (stable, outcome) = svc.expected();
    match world.store.state(&r).await {
        Ok(state) => {
            if state.stable_version != Some(stable) {
                v.push(format!(
                    "{r}: stable version {:?}, expected {stable}",
                    state.stable_version
                ));
            }
            if let Some(p) = state.in_progress {
                v.push(format!("{r}: {} still in progress", p.execution));
            }
        }
        Err(e) => v.push(format!("{r}: state.json: {e}")),
    }
    match world.store.lock(&r).await {
        Ok(None) => {}
        Ok(Some(l)) => v.push(format!("{r}: the lock is still held by {}", l.execution)),
        Err(e) => v.push(format!("{r}: lock.json: {e}")),
    }
    match world.store.history(&r).await {
        Ok(records) => {
            let mut versions: Vec<u32> = records.iter().map(|x| x.version).collect();
            versions.sort_unstable();
            if versions != [1, 2] {
                v.push(format!(
                    "{r}: records of versions {versions:?}, expected [1, 2]"
                ));
            }
            for rec in &records {
                let want = if rec.version == 1 { v1 } else { winner };
                if rec.execution != want {
                    v.push(format!(
                        "{r}: the record of v{} names {}, but {want} deployed it",
                        rec.version, rec.execution
                    ));
                }
                if rec.image != svc.image(rec.version) {
                    v.push(format!(
                        "{r}: the record of v{} has image {}",
                        rec.version, rec.image
                    ));
                }
                if rec.ended_at.is_none() {
                    v.push(format!("{r}: the record of v{} has not ended", rec.version));
                }
            }
            let got = records
                .iter()
                .find(|x| x.version == 2)
                .and_then(|x| x.outcome.as_ref())
                .map(|o| o.status);
            if got != Some(outcome) {
                v.push(format!(
                    "{r}: the record of v2 ended {got:?}, expected {outcome:?}"
                ));
            }
        }
        Err(e) => v.push(format!("{r}: history: {e}")),
    }
    // Every key under the service: only what a finished deployment leaves.
    let lock = world.store.lock_key(&r);
    let base = lock.trim_end_matches("lock.json").to_owned();
    match world.raw.list(&base).await {
        Ok(keys) => {
            let allowed: BTreeSet<String> = [
                "state.json",
                "lock.json",
                "history/1.json",
                "history/2.json",
                "manifests/1.yaml",
                "manifests/2.yaml",
            ]
            .iter()
            .map(|k| format!("{base}{k}"))
            .collect();
            for k in keys.iter().filter(|k| !allowed.contains(*k)) {
                v.push(format!("{r}: leftover S3 object {k}"));
            }
        }
        Err(e) => v.push(format!("{r}: listing {base}: {e}")),
    }
    // The cluster: all traffic on the stable version, only its objects left.
    let stable_name = labels::versioned_name(&svc.name, stable);
    let route = world.sim.get_object(
        "appmesh.k8s.aws/v1beta2",
        "VirtualRouter",
        &svc.namespace,
        &svc.name,
    );
    let targets = route.as_ref().map(route_weights).unwrap_or_default();
    let serving: Vec<_> = targets.iter().filter(|(_, w)| *w > 0).collect();
    if !(serving.len() == 1 && serving[0].0 == stable_name && serving[0].1 == 100) {
        v.push(format!(
            "{r}: route targets {targets:?}, expected all traffic on {stable_name}"
        ));
    }
    if world
        .sim
        .get_object("apps/v1", "Deployment", &svc.namespace, &stable_name)
        .is_none()
    {
        v.push(format!("{r}: the Deployment {stable_name} is missing"));
    }
    for o in world.sim.list_objects(&svc.namespace) {
        let l = &o["metadata"]["labels"];
        if l[labels::SERVICE].as_str() != Some(svc.name.as_str()) {
            continue;
        }
        if let Some(ver) = l[labels::VERSION].as_str()
            && ver != stable.to_string()
        {
            v.push(format!(
                "{r}: leftover {} {} of version {ver}",
                o["kind"].as_str().unwrap_or("?"),
                o["metadata"]["name"].as_str().unwrap_or("?")
            ));
        }
    }
    v
}

/// Isolation in the cluster: every object labelled for a service is named for it, and
/// every route write names only its own service's versions.
pub(super) fn check_cluster(world: &World) -> Vec<String> {
    let mut v = Vec::new();
    let namespaces: BTreeSet<&str> = world
        .services
        .iter()
        .map(|s| s.namespace.as_str())
        .collect();
    for ns in namespaces {
        for o in world.sim.list_objects(ns) {
            let Some(service) = o["metadata"]["labels"][labels::SERVICE].as_str() else {
                continue;
            };
            let name = o["metadata"]["name"].as_str().unwrap_or("");
            let own = name == service || name.starts_with(&format!("{service}-"));
            let known = world
                .services
                .iter()
                .any(|s| s.namespace == ns && s.name == service);
            if !own || !known {
                v.push(format!(
                    "{ns}: {} {name} is labelled for service {service}",
                    o["kind"].as_str().unwrap_or("?")
                ));
            }
        }
        for change in world.sim.weight_history(ns) {
            for (target, _) in &change.weights {
                let Some((service, version)) = target.rsplit_once('-') else {
                    v.push(format!("{ns}: route {} names target {target}", change.name));
                    continue;
                };
                if service != change.name || version.parse::<u32>().is_err() {
                    v.push(format!(
                        "{ns}: route {} of one service was written with target {target}",
                        change.name
                    ));
                }
            }
        }
    }
    v
}
