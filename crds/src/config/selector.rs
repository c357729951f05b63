//! Kubernetes label selectors, checked once and then matched without errors.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// One requirement of a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// The label has one of the values.
    In(String, BTreeSet<String>),
    /// The label is absent or has none of the values.
    NotIn(String, BTreeSet<String>),
    /// The label is present.
    Exists(String),
    /// The label is absent.
    DoesNotExist(String),
}

/// A validated label selector. The empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Checks a selector the way the API server does for built-in kinds.
    /// The error names the offending part, relative to the selector.
    pub fn parse(s: &LabelSelector) -> Result<Self, (String, String)> {
        let mut requirements = Vec::new();
        for (k, v) in s.match_labels.iter().flatten() {
            requirements.push(Requirement::In(k.clone(), BTreeSet::from([v.clone()])));
        }
        for (i, e) in s.match_expressions.iter().flatten().enumerate() {
            let values: BTreeSet<String> = e.values.iter().flatten().cloned().collect();
            let field = format!("matchExpressions[{i}]");
            let r = match e.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => {
                    return Err((
                        field,
                        format!("operator {} needs at least one value", e.operator),
                    ));
                }
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    return Err((field, format!("operator {} takes no values", e.operator)));
                }
                "In" => Requirement::In(e.key.clone(), values),
                "NotIn" => Requirement::NotIn(e.key.clone(), values),
                "Exists" => Requirement::Exists(e.key.clone()),
                "DoesNotExist" => Requirement::DoesNotExist(e.key.clone()),
                other => {
                    return Err((
                        format!("{field}.operator"),
                        format!(
                            "unknown operator {other:?}: use In, NotIn, Exists or DoesNotExist"
                        ),
                    ));
                }
            };
            requirements.push(r);
        }
        Ok(Selector { requirements })
    }

    /// Selector that matches everything.
    pub fn everything() -> Self {
        Selector::default()
    }

    /// Whether the labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        })
    }
}

/// A list of selectors as MetalLB uses them: empty matches everything, otherwise
/// any one selector matching is enough.
pub fn any_matches(selectors: &[Selector], labels: &BTreeMap<String, String>) -> bool {
    selectors.is_empty() || selectors.iter().any(|s| s.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn matches_like_kubernetes() {
        let s = Selector::parse(&LabelSelector {
            match_labels: Some(labels(&[("rack", "r1")])),
            match_expressions: Some(vec![
                expr("zone", "In", &["a", "b"]),
                expr("drain", "DoesNotExist", &[]),
                expr("tier", "NotIn", &["edge"]),
            ]),
        })
        .unwrap();
        assert!(s.matches(&labels(&[("rack", "r1"), ("zone", "a")])));
        assert!(!s.matches(&labels(&[("rack", "r1"), ("zone", "c")])));
        assert!(!s.matches(&labels(&[("rack", "r1"), ("zone", "a"), ("drain", "")])));
        assert!(!s.matches(&labels(&[("rack", "r1"), ("zone", "a"), ("tier", "edge")])));
        assert!(!s.matches(&labels(&[("zone", "a")])));
        assert!(Selector::everything().matches(&labels(&[])));
        assert!(any_matches(&[], &labels(&[])));
    }

    #[test]
    fn rejects_malformed_expressions_naming_the_part() {
        let bad = |e| {
            Selector::parse(&LabelSelector {
                match_expressions: Some(vec![e]),
                ..Default::default()
            })
        };
        assert_eq!(
            bad(expr("k", "In", &[])).unwrap_err().0,
            "matchExpressions[0]"
        );
        assert_eq!(
            bad(expr("k", "Exists", &["x"])).unwrap_err().0,
            "matchExpressions[0]"
        );
        assert_eq!(
            bad(expr("k", "Equals", &["x"])).unwrap_err().0,
            "matchExpressions[0].operator"
        );
    }
}
