//! After-images as BSON bytes: the planned document (relaxed Extended JSON) encoded so
//! that every field a repair did not touch keeps the original's BSON type. Relaxed
//! Extended JSON cannot tell an Int32 from an Int64, so a plain encoding would turn an
//! untouched Int64 into an Int32; dumps and live deployments are written through here.

use bson::{Bson, Document};
use serde_json::Value;

use super::error::ApplyError;

fn ordered_fingerprint(bytes: &[u8]) -> Option<u128> {
    crate::value::from_bson(bytes)
        .ok()
        .map(|d| crate::value::fingerprint(&d.value).ordered)
}

/// Two values that relaxed Extended JSON cannot tell apart: the same, except that an
/// Int32 and an Int64 of equal value are alike.
fn alike(a: &Bson, b: &Bson) -> bool {
    match (a, b) {
        (Bson::Int32(x), Bson::Int64(y)) | (Bson::Int64(y), Bson::Int32(x)) => i64::from(*x) == *y,
        (Bson::Document(x), Bson::Document(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((ka, va), (kb, vb))| ka == kb && alike(va, vb))
        }
        (Bson::Array(x), Bson::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| alike(p, q))
        }
        _ => a == b,
    }
}

/// `after` with the original's BSON value (and so its type: Int64 stays Int64) wherever
/// the repair left it as it was, recursively through sub-documents and through arrays that
/// kept their length.
fn keep_type(original: &Bson, after: Bson) -> Bson {
    match (original, after) {
        (ov, av) if alike(ov, &av) => ov.clone(),
        (Bson::Document(od), Bson::Document(ad)) => Bson::Document(
            ad.into_iter()
                .map(|(k, av)| {
                    let kept = match od.get(&k) {
                        Some(ov) => keep_type(ov, av),
                        None => av,
                    };
                    (k, kept)
                })
                .collect(),
        ),
        (Bson::Array(oa), Bson::Array(aa)) if oa.len() == aa.len() => Bson::Array(
            oa.iter()
                .zip(aa)
                .map(|(ov, av)| keep_type(ov, av))
                .collect(),
        ),
        (_, av) => av,
    }
}

/// The bytes to write for an after-image, keeping the original's BSON types where the
/// repair did not touch a field; falls back to the plain encoding of the after-image
/// when the result would not be exactly the planned document.
pub fn after_bytes(original: Option<&[u8]>, after: &Value) -> Result<Vec<u8>, ApplyError> {
    let plain = crate::value::to_bson(after).map_err(|e| {
        let id = after
            .get("_id")
            .map(crate::scan::id_text)
            .unwrap_or_default();
        ApplyError::Usage(format!("_id {id}: after-image: {e}"))
    })?;
    let Some(orig) = original else {
        return Ok(plain);
    };
    let (Ok(od), Ok(ad)) = (
        Document::from_reader(orig),
        Document::from_reader(&plain[..]),
    ) else {
        return Ok(plain);
    };
    let Bson::Document(merged) = keep_type(&Bson::Document(od), Bson::Document(ad)) else {
        return Ok(plain);
    };
    match merged.to_vec() {
        Ok(b) if ordered_fingerprint(&b) == Some(crate::value::fingerprint(after).ordered) => Ok(b),
        _ => Ok(plain),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;
    use serde_json::json;

    #[test]
    fn untouched_fields_keep_their_bson_types() {
        let orig = doc! {"_id": 1, "n": 5_i64, "sub": {"k": 7_i64, "x": 1}, "gone": 1, "s": "a",
        "items": [{"q": 3_i64, "p": 1}, 9_i64]};
        let raw = orig.to_vec().unwrap();
        // The repair changes sub.x and s and drops `gone`; n and sub.k are untouched.
        let after = json!({"_id": 1, "n": 5, "sub": {"k": 7, "x": 2}, "s": "b",
            "items": [{"q": 3, "p": 2}, 9]});
        let bytes = after_bytes(Some(&raw), &after).unwrap();
        let d = Document::from_reader(&bytes[..]).unwrap();
        assert_eq!(d.get("n"), Some(&Bson::Int64(5)));
        assert_eq!(
            d.get_document("sub").unwrap().get("k"),
            Some(&Bson::Int64(7))
        );
        assert_eq!(
            d.get_document("sub").unwrap().get("x"),
            Some(&Bson::Int32(2))
        );
        assert!(!d.contains_key("gone"));
        // In an array whose one element changed, the others keep their types too.
        let items = d.get_array("items").unwrap();
        assert_eq!(items[1], Bson::Int64(9));
        let first = items[0].as_document().unwrap();
        assert_eq!(first.get("q"), Some(&Bson::Int64(3)));
        assert_eq!(first.get("p"), Some(&Bson::Int32(2)));
        assert_eq!(
            ordered_fingerprint(&bytes),
            Some(crate::value::fingerprint(&after).ordered)
        );
    }
}
