//! The evaluation: every action × resource asked about, one page at a time, decided by
//! `policy::evaluate` and explained as IAM's simulator explains its results.

use super::positions::Position;
use crate::policy::{
    self, ContextValue, Decision, Effect, Policy, PolicyScope, PolicySet, Principal,
    RequestContext, ResourceAccount, StatementEffect,
};
use std::sync::Arc;

/// `EvalDecisionDetails` keys.
pub(super) const DETAIL_IDENTITY: &str = "IAM Policy";
pub(super) const DETAIL_BOUNDARY: &str = "Permissions Boundary Policy";
const DETAIL_RESOURCE: &str = "Resource Policy";

/// A policy taking part in a simulation, and how the response names it.
pub(super) struct Source {
    /// `SourcePolicyId`.
    pub(super) id: String,
    /// `SourcePolicyType`.
    pub(super) source_type: &'static str,
    /// Its role in the policy set.
    pub(super) scope: PolicyScope,
    pub(super) policy: Arc<Policy>,
    /// Start and end of each statement; empty when the text is not known.
    pub(super) positions: Vec<(Position, Position)>,
}

impl Source {
    /// A policy of the configuration, kept parsed: its statements carry no positions.
    pub(super) fn configured(
        id: &str,
        source_type: &'static str,
        scope: PolicyScope,
        policy: &Arc<Policy>,
    ) -> Self {
        Self {
            id: id.to_string(),
            source_type,
            scope,
            policy: Arc::clone(policy),
            positions: Vec::new(),
        }
    }
}

/// A statement that decided a result, as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Matched {
    pub(super) id: String,
    pub(super) source_type: &'static str,
    pub(super) span: Option<(Position, Position)>,
}

/// The decision for one action on one resource, with what explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Outcome {
    pub(super) decision: Effect,
    pub(super) matched: Vec<Matched>,
    pub(super) missing: Vec<String>,
    pub(super) details: Vec<(&'static str, Effect)>,
    /// `Some` when a permissions boundary took part.
    pub(super) allowed_by_boundary: Option<bool>,
}

/// One `EvaluationResult`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EvalResult {
    pub(super) action: String,
    pub(super) resource: String,
    pub(super) outcome: Outcome,
    /// Whether `ResourceArns` were given (then `ResourceSpecificResults` is written).
    pub(super) resource_specific: bool,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Page {
    pub(super) results: Vec<EvalResult>,
    /// The marker of the next page, when there is one.
    pub(super) next: Option<usize>,
}

/// Everything a simulation evaluates.
pub(super) struct Simulation {
    pub(super) sources: Vec<Source>,
    pub(super) actions: Vec<String>,
    pub(super) resources: Vec<String>,
    pub(super) resources_given: bool,
    pub(super) principal: Option<Principal>,
    /// The account of the simulated caller, when known.
    pub(super) principal_account: Option<String>,
    /// `ResourceOwner`: the account of resources whose ARN names none.
    pub(super) resource_owner: Option<String>,
    /// Context keys, applied in order (later ones replace earlier ones).
    pub(super) keys: Vec<(String, ContextValue)>,
    pub(super) max_items: usize,
    pub(super) marker: usize,
}

/// What the statements of one scope said on their own.
fn scope_effect(d: &Decision, scope: PolicyScope) -> Effect {
    let mut allowed = false;
    for m in d.matched.iter().filter(|m| m.scope == scope) {
        if m.effect == StatementEffect::Deny {
            return Effect::ExplicitDeny;
        }
        allowed = true;
    }
    if allowed {
        Effect::Allow
    } else {
        Effect::ImplicitDeny
    }
}

impl Simulation {
    /// The policy set, each policy labelled with its index in `sources`.
    fn set<'a>(&'a self, labels: &'a [String]) -> PolicySet<'a> {
        let mut set = PolicySet::new();
        // Labels are source indices, so that two sources with the same name stay apart.
        for (label, s) in labels.iter().zip(&self.sources) {
            let p: &Policy = &s.policy;
            let label: &str = label;
            match s.scope {
                PolicyScope::Identity => set.identity.push((label, p)),
                PolicyScope::Session => set.session.get_or_insert_with(Vec::new).push((label, p)),
                PolicyScope::Boundary => set.boundary = Some((label, p)),
                PolicyScope::Resource => set.resource = Some((label, p)),
            }
        }
        set
    }

    fn context(&self, action: &str, resource: &str) -> RequestContext {
        let mut ctx = RequestContext::new(action, resource);
        if let Some(p) = &self.principal {
            ctx = ctx.with_principal(p.clone());
        }
        for (k, v) in &self.keys {
            ctx.set(k, v.clone());
        }
        ctx
    }

    fn outcome(&self, set: &PolicySet<'_>, ctx: &RequestContext) -> Outcome {
        let d = policy::evaluate(set, ctx);
        let explicit = d.effect == Effect::ExplicitDeny;
        let matched = d
            .matched
            .iter()
            // With an explicit deny, the deny statements alone decide (and are all IAM lists).
            .filter(|m| !explicit || m.effect == StatementEffect::Deny)
            .filter_map(|m| {
                let s = self.sources.get(m.policy.parse::<usize>().ok()?)?;
                Some(Matched {
                    id: s.id.clone(),
                    source_type: s.source_type,
                    span: s.positions.get(m.index).copied(),
                })
            })
            .collect();
        let mut details = vec![(DETAIL_IDENTITY, scope_effect(&d, PolicyScope::Identity))];
        if set.boundary.is_some() {
            details.push((DETAIL_BOUNDARY, scope_effect(&d, PolicyScope::Boundary)));
        }
        if set.resource.is_some() {
            details.push((DETAIL_RESOURCE, scope_effect(&d, PolicyScope::Resource)));
        }
        let allowed_by_boundary = set
            .boundary
            .is_some()
            .then(|| scope_effect(&d, PolicyScope::Boundary) == Effect::Allow);
        Outcome {
            decision: d.effect,
            matched,
            missing: d.missing_context_keys,
            details,
            allowed_by_boundary,
        }
    }

    /// Where `resource` is, seen from the simulated caller: its ARN's account, else
    /// `ResourceOwner`, else (as IAM's simulator assumes) the caller's own account.
    fn resource_account(&self, resource: &str) -> ResourceAccount {
        let Some(caller) = self.principal_account.as_deref() else {
            return ResourceAccount::Same;
        };
        let owner = policy::arn_account(resource)
            .or(self.resource_owner.as_deref())
            .unwrap_or(caller);
        ResourceAccount::of(caller, Some(owner))
    }

    /// The page of results from `marker`: actions in the order given, each against every resource.
    pub(super) fn run(&self) -> Page {
        let labels: Vec<String> = (0..self.sources.len()).map(|i| i.to_string()).collect();
        let mut set = self.set(&labels);
        let per_action = self.resources.len();
        let total = self.actions.len() * per_action;
        let end = total.min(self.marker.saturating_add(self.max_items));
        let results = (self.marker..end)
            .map(|k| {
                let action = &self.actions[k / per_action];
                let resource = &self.resources[k % per_action];
                let ctx = self.context(action, resource);
                set.resource_account = self.resource_account(resource);
                EvalResult {
                    action: action.clone(),
                    resource: resource.clone(),
                    outcome: self.outcome(&set, &ctx),
                    resource_specific: self.resources_given,
                }
            })
            .collect();
        Page {
            results,
            next: (end < total).then_some(end),
        }
    }
}

// ---------------------------------------------------------------------------------------------
