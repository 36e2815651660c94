//! Kubernetes protobuf bodies, read as far as the simulator needs: kubectl 1.32 sends
//! the objects its typed clients write (`kubectl create namespace`) as
//! `application/vnd.kubernetes.protobuf` and does not fall back to JSON on a 415, so
//! the simulator reads the envelope (the `k8s\0` magic, then a `runtime.Unknown` with
//! the type and the raw object) and, inside it, a `v1` Namespace: metadata (name,
//! generateName, namespace, labels, annotations, finalizers), `spec.finalizers` and
//! `status.phase`. Other fields are skipped as the wire format allows; other kinds are
//! refused with [`Decoded::OtherKind`] so the caller can answer 415.
//!
//! Field numbers are those of `k8s.io/api/core/v1/generated.proto` and
//! `k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto` and
//! `k8s.io/apimachinery/pkg/runtime/generated.proto`.

use serde_json::{Map, Value, json};

/// The four bytes every Kubernetes protobuf body starts with.
const MAGIC: &[u8] = b"k8s\0";

/// What a protobuf body holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decoded {
    /// An object the simulator reads, as JSON.
    Object(Value),
    /// An object of a kind it does not read: `apiVersion` and `kind`.
    OtherKind(String, String),
}

/// A body that is not the protobuf it claims to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the protobuf body is malformed: {0}")]
pub(crate) struct Malformed(String);

fn malformed(what: impl Into<String>) -> Malformed {
    Malformed(what.into())
}

/// One field of a message.
enum Field<'a> {
    /// A length-delimited field (string, bytes, message): its number and bytes.
    Bytes(u32, &'a [u8]),
    /// A varint or fixed-width field: none the simulator reads, so read past.
    Skipped,
}

/// A cursor over one message's bytes.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, at: 0 }
    }

    fn varint(&mut self) -> Result<u64, Malformed> {
        let mut value = 0_u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .data
                .get(self.at)
                .ok_or_else(|| malformed("a varint runs past the end"))?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed("a varint is longer than 10 bytes"))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], Malformed> {
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.data.len())
            .ok_or_else(|| malformed("a length-delimited field runs past the end"))?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    /// The next field, or `None` at the end of the message.
    fn field(&mut self) -> Result<Option<Field<'a>>, Malformed> {
        if self.at >= self.data.len() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let number =
            u32::try_from(tag >> 3).map_err(|_| malformed("a field number is too large"))?;
        match tag & 7 {
            0 => {
                self.varint()?;
                Ok(Some(Field::Skipped))
            }
            1 => {
                self.take(8)?;
                Ok(Some(Field::Skipped))
            }
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| malformed("a length does not fit in memory"))?;
                Ok(Some(Field::Bytes(number, self.take(len)?)))
            }
            5 => {
                self.take(4)?;
                Ok(Some(Field::Skipped))
            }
            other => Err(malformed(format!(
                "wire type {other} of field {number} is not one protobuf 3 uses"
            ))),
        }
    }
}

fn text(bytes: &[u8], what: &str) -> Result<String, Malformed> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed(format!("{what} is not UTF-8")))
}

/// A `map<string, string>` entry: key 1, value 2.
fn map_entry(bytes: &[u8], what: &str) -> Result<(String, String), Malformed> {
    let mut r = Reader::new(bytes);
    let (mut key, mut value) = (String::new(), String::new());
    while let Some(f) = r.field()? {
        match f {
            Field::Bytes(1, b) => key = text(b, what)?,
            Field::Bytes(2, b) => value = text(b, what)?,
            _ => {}
        }
    }
    Ok((key, value))
}

/// `ObjectMeta`: the fields a client sets when it creates an object.
fn object_meta(bytes: &[u8]) -> Result<Value, Malformed> {
    let mut r = Reader::new(bytes);
    let mut meta = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    let mut finalizers = Vec::new();
    while let Some(f) = r.field()? {
        match f {
            Field::Bytes(n @ (1 | 2 | 3 | 6), b) => {
                let key = match n {
                    1 => "name",
                    2 => "generateName",
                    3 => "namespace",
                    _ => "resourceVersion",
                };
                let value = text(b, key)?;
                if !value.is_empty() {
                    meta.insert(key.into(), json!(value));
                }
            }
            Field::Bytes(11, b) => {
                let (k, v) = map_entry(b, "a label")?;
                labels.insert(k, json!(v));
            }
            Field::Bytes(12, b) => {
                let (k, v) = map_entry(b, "an annotation")?;
                annotations.insert(k, json!(v));
            }
            Field::Bytes(14, b) => finalizers.push(json!(text(b, "a finalizer")?)),
            _ => {}
        }
    }
    if !labels.is_empty() {
        meta.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        meta.insert("annotations".into(), Value::Object(annotations));
    }
    if !finalizers.is_empty() {
        meta.insert("finalizers".into(), Value::Array(finalizers));
    }
    Ok(Value::Object(meta))
}

/// A `v1` Namespace: metadata 1, spec 2 (finalizers 1), status 3 (phase 1).
fn namespace(bytes: &[u8]) -> Result<Value, Malformed> {
    let mut r = Reader::new(bytes);
    let mut ns = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": {} });
    while let Some(f) = r.field()? {
        match f {
            Field::Bytes(1, b) => ns["metadata"] = object_meta(b)?,
            Field::Bytes(2, b) => {
                let mut spec = Reader::new(b);
                let mut finalizers = Vec::new();
                while let Some(f) = spec.field()? {
                    if let Field::Bytes(1, b) = f {
                        finalizers.push(json!(text(b, "a finalizer")?));
                    }
                }
                if !finalizers.is_empty() {
                    ns["spec"] = json!({ "finalizers": finalizers });
                }
            }
            Field::Bytes(3, b) => {
                let mut status = Reader::new(b);
                while let Some(f) = status.field()? {
                    if let Field::Bytes(1, b) = f
                        && !b.is_empty()
                    {
                        ns["status"] = json!({ "phase": text(b, "the phase")? });
                    }
                }
            }
            Field::Bytes(..) | Field::Skipped => {}
        }
    }
    Ok(ns)
}

/// Reads a protobuf body: the envelope, then the object when it is one the simulator
/// reads.
pub(crate) fn decode(body: &[u8]) -> Result<Decoded, Malformed> {
    let unknown = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| malformed("it does not start with the `k8s\\0` prefix"))?;
    let mut r = Reader::new(unknown);
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), None);
    while let Some(f) = r.field()? {
        match f {
            Field::Bytes(1, type_meta) => {
                let mut t = Reader::new(type_meta);
                while let Some(f) = t.field()? {
                    match f {
                        Field::Bytes(1, b) => api_version = text(b, "apiVersion")?,
                        Field::Bytes(2, b) => kind = text(b, "kind")?,
                        _ => {}
                    }
                }
            }
            Field::Bytes(2, b) => raw = Some(b),
            Field::Bytes(3, b) if !b.is_empty() => {
                return Err(malformed(format!(
                    "content encoding `{}` is not supported",
                    String::from_utf8_lossy(b)
                )));
            }
            _ => {}
        }
    }
    let raw = raw.ok_or_else(|| malformed("the envelope holds no object"))?;
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => Ok(Decoded::Object(namespace(raw)?)),
        _ => Ok(Decoded::OtherKind(api_version, kind)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A length-delimited field.
    fn bytes(number: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3) | 2];
        let mut len = payload.len();
        loop {
            let byte = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
        out.extend_from_slice(payload);
        out
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = [bytes(1, api_version.as_bytes()), bytes(2, kind.as_bytes())].concat();
        [
            MAGIC.to_vec(),
            bytes(1, &type_meta),
            bytes(2, raw),
            bytes(3, b""),
            bytes(4, b""),
        ]
        .concat()
    }

    #[test]
    fn the_body_kubectl_create_namespace_sends_reads_as_a_namespace() {
        // As kubectl 1.32 sends it for `kubectl create namespace shop` (seen with -v=8).
        let body: &[u8] = &[
            0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0f, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x09, 0x4e, 0x61,
            0x6d, 0x65, 0x73, 0x70, 0x61, 0x63, 0x65, 0x12, 0x1c, 0x0a, 0x14, 0x0a, 0x04, 0x73,
            0x68, 0x6f, 0x70, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38,
            0x00, 0x42, 0x00, 0x12, 0x00, 0x1a, 0x02, 0x0a, 0x00, 0x1a, 0x00, 0x22, 0x00,
        ];
        assert_eq!(
            decode(body),
            Ok(Decoded::Object(json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": { "name": "shop" },
            })))
        );
    }

    #[test]
    fn labels_annotations_and_finalizers_are_read_and_unknown_fields_skipped() {
        let entry = |k: &str, v: &str| [bytes(1, k.as_bytes()), bytes(2, v.as_bytes())].concat();
        let meta = [
            bytes(1, b"team"),
            vec![7 << 3, 0x96, 0x01], // generation 150, a varint the reader skips
            bytes(11, &entry("env", "prod")),
            bytes(12, &entry("note", "hi")),
            bytes(14, b"example.com/keep"),
            vec![(9 << 3) | 5, 1, 2, 3, 4], // a fixed32 nobody sends, skipped
        ]
        .concat();
        let ns = [bytes(1, &meta), bytes(2, &bytes(1, b"kubernetes"))].concat();
        let Ok(Decoded::Object(v)) = decode(&envelope("v1", "Namespace", &ns)) else {
            panic!("not decoded");
        };
        assert_eq!(
            v,
            json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {
                    "name": "team", "labels": { "env": "prod" },
                    "annotations": { "note": "hi" }, "finalizers": ["example.com/keep"],
                },
                "spec": { "finalizers": ["kubernetes"] },
            })
        );
    }

    #[test]
    fn other_kinds_are_named_and_broken_bodies_refused() {
        assert_eq!(
            decode(&envelope("v1", "ConfigMap", &bytes(1, &bytes(1, b"cm")))),
            Ok(Decoded::OtherKind("v1".into(), "ConfigMap".into()))
        );
        assert!(decode(b"{\"kind\":\"Namespace\"}").is_err());
        let mut truncated = envelope("v1", "Namespace", &bytes(1, &bytes(1, b"shop")));
        truncated.truncate(truncated.len() - 8);
        let err = decode(&truncated).map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("runs past the end"), "{err}");
        assert!(decode(&[MAGIC, &[0x0a, 0xff]].concat()).is_err());
        let no_object = [MAGIC.to_vec(), bytes(1, &bytes(2, b"Namespace"))].concat();
        assert_eq!(
            decode(&no_object),
            Err(malformed("the envelope holds no object"))
        );
    }
}
