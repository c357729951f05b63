use std::fmt;

/// A problem with one configuration object, naming the object and the field so that
/// it can become a status condition and an Event on that object.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The object's kind, e.g. `IPAddressPool`.
    pub kind: &'static str,
    /// The object's namespace (empty for the file source's cluster-scoped view).
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// Path of the offending field, e.g. `spec.addresses[1]`.
    pub field: String,
    /// What is wrong and, where it helps, what to do.
    pub message: String,
    /// Whether the object was dropped from the configuration (`true`) or is still
    /// used without the bad part (`false`, e.g. a reference to a missing pool).
    pub rejected: bool,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.kind)?;
        if !self.namespace.is_empty() {
            write!(f, "{}/", self.namespace)?;
        }
        write!(f, "{}: {}: {}", self.name, self.field, self.message)?;
        if self.rejected {
            f.write_str(" (object ignored until fixed)")?;
        }
        Ok(())
    }
}
