//! `collapse lineage RUN_DIR --format openlineage`: the run as OpenLineage
//! RunEvents (spec 2-0-2), a START and a COMPLETE per generation, one JSON
//! object a line, each dataset carrying its blake3 in a custom facet, so
//! lineage tools (Marquez, DataHub, OpenMetadata) can ingest a run.

use std::path::Path;

use serde_json::{json, Value};

use super::manifest::{FileEntry, Manifest};
use crate::error::{Error, Result};

const SCHEMA: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const PRODUCER: &str = concat!("https://github.com/collapse-dev/collapse/tree/v", env!("CARGO_PKG_VERSION"));
const FACET_SCHEMA: &str = "https://github.com/collapse-dev/collapse/blob/main/README.md#provenance";

/// A version-4-shaped UUID derived from a manifest's hash, so the same run
/// always exports the same run ids.
fn uuid_from(hash: &str) -> String {
    let mut b: [u8; 16] = blake3::hash(hash.as_bytes()).as_bytes()[..16].try_into().unwrap_or([0; 16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// RFC 3339 UTC time of a Unix timestamp (civil-from-days, Hinnant).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// A file as an OpenLineage dataset: the run's own files in the run's
/// namespace, a source file (`source`: read by generation 0 from outside the
/// run) by its absolute path on this machine.
fn dataset(root: &Path, namespace: &str, e: &FileEntry, output: bool, source: bool) -> Value {
    let (ns, name) = if source {
        let path = super::audit::source_path(root, &e.path);
        ("file://".to_string(), std::path::absolute(&path).unwrap_or(path).display().to_string())
    } else {
        (namespace.to_string(), e.path.clone())
    };
    let mut d = json!({
        "namespace": ns,
        "name": name,
        "facets": {
            "collapse_blake3": {
                "_producer": PRODUCER,
                "_schemaURL": FACET_SCHEMA,
                "blake3": e.blake3,
                "bytes": e.bytes,
            }
        }
    });
    if output {
        d["outputFacets"] = json!({
            "outputStatistics": {
                "_producer": PRODUCER,
                "_schemaURL": "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json",
                "rowCount": e.rows,
                "size": e.bytes,
            }
        });
    }
    d
}

/// The events of every sealed generation, as JSON lines.
pub fn openlineage(root: &Path) -> Result<String> {
    let run = crate::data::store::run_json(root)
        .ok_or_else(|| Error::Input(format!("{}: not a run directory (no readable run.json)", root.display())))?;
    let times = super::times_from(root, Some(&run));
    let started = times.started.unwrap_or(0);
    let finished = times.finished.unwrap_or(started);
    let abs = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let namespace = format!("file://{}", abs.display());
    let mut out = String::new();
    let mut k = 0;
    while let Ok((m, hash)) = Manifest::read(root, k) {
        // The run directory is the job's namespace: two runs of one pipeline
        // (same name, same seed, byte-identical manifests) in two folders
        // are two jobs, and their run ids differ with it.
        let job = json!({ "namespace": namespace, "name": format!("{}.generation={k}", m.run) });
        let run_facets = json!({
            "collapse_manifest": {
                "_producer": PRODUCER,
                "_schemaURL": FACET_SCHEMA,
                "manifest": Manifest::path(k).display().to_string(),
                "manifest_blake3": hash,
                "previous_manifest_blake3": m.previous_manifest_blake3,
                "config_blake3": m.config_blake3,
                "seed": m.seed,
            }
        });
        let run_id = uuid_from(&format!("{namespace}\n{hash}"));
        let inputs: Vec<Value> = m.inputs.iter().map(|e| dataset(root, &namespace, e, false, k == 0)).collect();
        let outputs: Vec<Value> = m.outputs.iter().map(|e| dataset(root, &namespace, e, true, false)).collect();
        for (event, time, with_outputs) in [("START", started, false), ("COMPLETE", finished, true)] {
            let e = json!({
                "eventType": event,
                "eventTime": rfc3339(time),
                "producer": PRODUCER,
                "schemaURL": SCHEMA,
                "run": { "runId": run_id, "facets": run_facets },
                "job": job,
                "inputs": inputs,
                "outputs": if with_outputs { outputs.clone() } else { Vec::new() },
            });
            out.push_str(&e.to_string());
            out.push('\n');
        }
        k += 1;
    }
    if k == 0 {
        return Err(Error::Input(format!("{}: no manifests to export (not a run directory?)", root.display())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
    }

    #[test]
    fn run_ids_are_uuid_v4_shaped_and_stable() {
        let a = uuid_from("abc");
        assert_eq!(a, uuid_from("abc"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!("89ab".contains(&a[19..20]));
    }
}
