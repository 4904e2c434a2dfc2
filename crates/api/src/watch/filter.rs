//! Which instances a watch follows, and what a change means to it. Filtering is one function of
//! what selectors can name ([`Selectable`]); a change that moves an object into the filter is
//! sent as `ADDED`, one that moves it out as `DELETED`, as Kubernetes does.

use std::collections::BTreeMap;
use std::sync::Arc;

use openclaws_model::selector::{FieldSelector, FieldSet, LabelSelector};
use openclaws_model::Phase;
use openclaws_store::changes::{Change, ChangeType};

/// What a filter sees of an instance: the fields selectors can name.
#[derive(Debug, Clone, Copy)]
pub struct Selectable<'a> {
    /// `metadata.name`.
    pub name: &'a str,
    /// `metadata.labels`.
    pub labels: &'a BTreeMap<String, String>,
    /// `status.phase`.
    pub phase: &'a str,
    /// `spec.customerId`.
    pub customer_id: &'a str,
}

/// A compiled `labelSelector` / `fieldSelector`.
pub type Predicate = Arc<dyn Fn(&Selectable<'_>) -> bool + Send + Sync>;

/// The selectors of a watch as a [`Predicate`] (`None` when both are empty): the same
/// [`LabelSelector`] and [`FieldSelector`] the list applies in SQL, applied here in memory.
pub fn selectors(labels: LabelSelector, fields: FieldSelector) -> Option<Predicate> {
    if labels.is_empty() && fields.is_empty() {
        return None;
    }
    Some(Arc::new(move |object: &Selectable<'_>| {
        if !labels.matches(object.labels) {
            return false;
        }
        if fields.is_empty() {
            return true;
        }
        Phase::parse(object.phase).is_some_and(|phase| {
            fields.matches(&FieldSet {
                phase,
                customer_id: object.customer_id,
            })
        })
    }))
}

/// A watch's filter: the list's `customerId` and `phase` parameters and the selectors.
#[derive(Clone, Default)]
pub struct Filter {
    customer_id: Option<String>,
    phase: Option<String>,
    name: Option<String>,
    selector: Option<Predicate>,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("customer_id", &self.customer_id)
            .field("phase", &self.phase)
            .field("name", &self.name)
            .field("selector", &self.selector.is_some())
            .finish()
    }
}

impl Filter {
    /// Instances of `customer_id` (when given) in `phase` (when given) that `selector` accepts.
    pub fn new(
        customer_id: Option<String>,
        phase: Option<String>,
        selector: Option<Predicate>,
    ) -> Self {
        Self {
            customer_id,
            phase,
            name: None,
            selector,
        }
    }

    /// The one instance of this name (the support console's instance page).
    pub fn named(name: String) -> Self {
        Self {
            name: Some(name),
            ..Self::default()
        }
    }

    /// Whether the watch follows an instance that looks like `object`.
    pub fn matches(&self, object: &Selectable<'_>) -> bool {
        let equal =
            |wanted: &Option<String>, actual: &str| wanted.as_deref().is_none_or(|w| w == actual);
        equal(&self.customer_id, object.customer_id)
            && equal(&self.phase, object.phase)
            && equal(&self.name, object.name)
            && self.selector.as_ref().is_none_or(|p| p(object))
    }
}

/// The type a watch sends for a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// New to the watch: created, or now matching its filter.
    Added,
    /// Changed, and matching before and after.
    Modified,
    /// Gone from the watch: deleted, or no longer matching its filter.
    Deleted,
}

impl Seen {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Seen::Added => "ADDED",
            Seen::Modified => "MODIFIED",
            Seen::Deleted => "DELETED",
        }
    }
}

/// What a change of `type_` means to a watch: `now` whether the object as of the change passes
/// the filter, `before` whether it passed before a modification. `None`: nothing to send.
pub fn seen(type_: ChangeType, now: bool, before: Option<bool>) -> Option<Seen> {
    match type_ {
        ChangeType::Added => now.then_some(Seen::Added),
        ChangeType::Deleted => now.then_some(Seen::Deleted),
        ChangeType::Modified => match (before.unwrap_or(now), now) {
            (true, true) => Some(Seen::Modified),
            (false, true) => Some(Seen::Added),
            (true, false) => Some(Seen::Deleted),
            (false, false) => None,
        },
    }
}

/// What `change` means to a watch with `filter`.
pub fn classify(filter: &Filter, change: &Change) -> Option<Seen> {
    let record = &change.record;
    let now = filter.matches(&Selectable {
        name: &record.name,
        labels: &record.labels.0,
        phase: &record.phase,
        customer_id: &record.customer_id,
    });
    let before = change.before.as_ref().map(|b| {
        filter.matches(&Selectable {
            name: &record.name,
            labels: &b.labels,
            phase: &b.phase,
            customer_id: &record.customer_id,
        })
    });
    seen(change.type_, now, before)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object<'a>(labels: &'a BTreeMap<String, String>, phase: &'a str) -> Selectable<'a> {
        Selectable {
            name: "alpha",
            labels,
            phase,
            customer_id: "c1",
        }
    }

    #[test]
    fn an_empty_filter_follows_everything() {
        let labels = BTreeMap::new();
        assert!(Filter::default().matches(&object(&labels, "Ready")));
    }

    #[test]
    fn customer_phase_name_and_selector_all_apply() {
        let labels = BTreeMap::from([("tier".to_owned(), "gold".to_owned())]);
        let gold: Predicate = Arc::new(|o| o.labels.get("tier").is_some_and(|t| t == "gold"));
        let filter = Filter::new(Some("c1".into()), Some("Ready".into()), Some(gold));
        assert!(filter.matches(&object(&labels, "Ready")));
        assert!(!filter.matches(&object(&labels, "Pending")));
        assert!(!filter.matches(&object(&BTreeMap::new(), "Ready")));
        assert!(!Filter::new(Some("c2".into()), None, None).matches(&object(&labels, "Ready")));
        assert!(!Filter::named("beta".into()).matches(&object(&labels, "Ready")));
    }

    #[test]
    fn moving_in_and_out_of_the_filter_adds_and_deletes() {
        use ChangeType::*;
        assert_eq!(seen(Modified, true, Some(true)), Some(Seen::Modified));
        assert_eq!(seen(Modified, true, Some(false)), Some(Seen::Added));
        assert_eq!(seen(Modified, false, Some(true)), Some(Seen::Deleted));
        assert_eq!(seen(Modified, false, Some(false)), None);
        assert_eq!(seen(Added, true, None), Some(Seen::Added));
        assert_eq!(seen(Added, false, None), None);
        assert_eq!(seen(Deleted, true, None), Some(Seen::Deleted));
        assert_eq!(seen(Deleted, false, None), None);
    }

    #[test]
    fn selectors_filter_like_the_list() {
        assert!(selectors(LabelSelector::default(), FieldSelector::default()).is_none());
        let labels = LabelSelector::parse("tier in (gold,silver),!legacy").unwrap();
        let fields = FieldSelector::parse("status.phase!=Failed,spec.customerId=c1").unwrap();
        let predicate = selectors(labels, fields).unwrap();
        let gold = BTreeMap::from([("tier".to_owned(), "gold".to_owned())]);
        assert!(predicate(&object(&gold, "Ready")));
        assert!(!predicate(&object(&gold, "Failed")));
        assert!(!predicate(&object(&BTreeMap::new(), "Ready")));
    }
}
