//! ACL tokens (by accessor ID), policies and roles (by ID), and the bootstrap marker.
//!
//! Links from tokens and roles to policies and roles are resolved here, in the apply, by
//! ID or by name against the tables as they are then, and stored with both, so a link
//! never names something that did not exist when it was written. A policy or role
//! deleted later leaves links that readers skip, as Consul does. The built-in
//! `global-management` policy and anonymous token can be renamed or described but never
//! deleted; the policy's rules never change.

use super::{Refusal, Tables, Topic};
use crate::acl::structs::{AclLink, AclLookup, AclPolicy, AclRole, AclToken};
use crate::acl::{ANONYMOUS_TOKEN_ID, GLOBAL_MANAGEMENT_POLICY_ID};

fn lookup_matches(lookup: &AclLookup, id: &str, name: &str) -> bool {
    match lookup {
        AclLookup::All => true,
        AclLookup::Id(want) => id == want,
        AclLookup::Name(want) => name == want,
        AclLookup::Secret(_) => false,
    }
}

impl Tables {
    /// Tokens by accessor ID (`Secret` finds the one token with that secret).
    pub fn acl_tokens(&self, lookup: &AclLookup) -> Vec<AclToken> {
        match lookup {
            AclLookup::Secret(secret) => self
                .acl_tokens
                .values()
                .filter(|t| !secret.is_empty() && t.secret_id == *secret)
                .take(1)
                .cloned()
                .collect(),
            AclLookup::Id(id) => self.acl_tokens.get(id).cloned().into_iter().collect(),
            _ => self
                .acl_tokens
                .values()
                .filter(|t| lookup_matches(lookup, &t.accessor_id, ""))
                .cloned()
                .collect(),
        }
    }

    pub fn acl_policies(&self, lookup: &AclLookup) -> Vec<AclPolicy> {
        self.acl_policies
            .values()
            .filter(|p| lookup_matches(lookup, &p.id, &p.name))
            .cloned()
            .collect()
    }

    pub fn acl_roles(&self, lookup: &AclLookup) -> Vec<AclRole> {
        self.acl_roles
            .values()
            .filter(|r| lookup_matches(lookup, &r.id, &r.name))
            .cloned()
            .collect()
    }

    /// The index ACLs were bootstrapped at, if they were.
    pub fn acl_bootstrap_index(&self) -> Option<u64> {
        self.acl_bootstrap_index
    }

    /// A link completed from the table it points into, by ID, else by name.
    fn resolve_link(
        link: &AclLink,
        what: &str,
        find: impl Fn(&AclLink) -> Option<(String, String)>,
    ) -> Result<AclLink, Refusal> {
        match find(link) {
            Some((id, name)) => Ok(AclLink { id, name }),
            None => {
                let named = if link.id.is_empty() {
                    &link.name
                } else {
                    &link.id
                };
                Err(Refusal::Invalid(format!("cannot find {what} {named}")))
            }
        }
    }

    fn resolve_policy_links(&self, links: &[AclLink]) -> Result<Vec<AclLink>, Refusal> {
        links
            .iter()
            .map(|link| {
                Self::resolve_link(link, "policy", |l| {
                    self.acl_policies
                        .values()
                        .find(|p| {
                            (!l.id.is_empty() && p.id == l.id)
                                || (l.id.is_empty() && p.name == l.name)
                        })
                        .map(|p| (p.id.clone(), p.name.clone()))
                })
            })
            .collect()
    }

    fn resolve_role_links(&self, links: &[AclLink]) -> Result<Vec<AclLink>, Refusal> {
        links
            .iter()
            .map(|link| {
                Self::resolve_link(link, "role", |l| {
                    self.acl_roles
                        .values()
                        .find(|r| {
                            (!l.id.is_empty() && r.id == l.id)
                                || (l.id.is_empty() && r.name == l.name)
                        })
                        .map(|r| (r.id.clone(), r.name.clone()))
                })
            })
            .collect()
    }

    pub(super) fn set_acl_token(
        &mut self,
        index: u64,
        token: &AclToken,
    ) -> Result<Vec<Topic>, Refusal> {
        token.validate()?;
        if token.accessor_id.is_empty() || token.secret_id.is_empty() {
            return Err(Refusal::Invalid(
                "Invalid Token: AccessorID and SecretID are required".into(),
            ));
        }
        if self
            .acl_tokens
            .values()
            .any(|t| t.secret_id == token.secret_id && t.accessor_id != token.accessor_id)
        {
            return Err(Refusal::Invalid(
                "Invalid Token: SecretID is already in use".into(),
            ));
        }
        let mut stored = token.clone();
        stored.policies = self.resolve_policy_links(&token.policies)?;
        stored.roles = self.resolve_role_links(&token.roles)?;
        match self.acl_tokens.get(&token.accessor_id) {
            Some(old) => {
                if old.secret_id != token.secret_id {
                    return Err(Refusal::Invalid(
                        "Changing a token's SecretID is not permitted".into(),
                    ));
                }
                stored.create_index = old.create_index;
                stored.create_time = old.create_time.clone();
                let mut unchanged = old.clone();
                unchanged.modify_index = 0;
                stored.modify_index = 0;
                if unchanged == stored {
                    return Ok(Vec::new());
                }
            }
            None => stored.create_index = index,
        }
        stored.modify_index = index;
        self.acl_tokens.insert(stored.accessor_id.clone(), stored);
        Ok(vec![Topic::Acl])
    }

    pub(super) fn delete_acl_token(&mut self, accessor_id: &str) -> Result<Vec<Topic>, Refusal> {
        if accessor_id == ANONYMOUS_TOKEN_ID {
            return Err(Refusal::Invalid(
                "Deletion of the builtin anonymous token is not permitted".into(),
            ));
        }
        Ok(match self.acl_tokens.remove(accessor_id) {
            Some(_) => vec![Topic::Acl],
            None => Vec::new(),
        })
    }

    pub(super) fn set_acl_policy(
        &mut self,
        index: u64,
        policy: &AclPolicy,
    ) -> Result<Vec<Topic>, Refusal> {
        policy.validate()?;
        if policy.id.is_empty() {
            return Err(Refusal::Invalid("Invalid Policy: no ID is set".into()));
        }
        if self
            .acl_policies
            .values()
            .any(|p| p.name == policy.name && p.id != policy.id)
        {
            return Err(Refusal::Invalid(format!(
                "Invalid Policy: A Policy with Name {:?} already exists",
                policy.name
            )));
        }
        let mut stored = policy.clone();
        match self.acl_policies.get(&policy.id) {
            Some(old) => {
                if old.id == GLOBAL_MANAGEMENT_POLICY_ID && old.rules != policy.rules {
                    return Err(Refusal::Invalid(
                        "Changing the Rules for the builtin global-management policy is not permitted"
                            .into(),
                    ));
                }
                stored.create_index = old.create_index;
                stored.modify_index = old.modify_index;
                if *old == stored {
                    return Ok(Vec::new());
                }
            }
            None => stored.create_index = index,
        }
        stored.modify_index = index;
        // Links keep the policy's current name.
        let renamed: Vec<(String, AclToken)> = self
            .acl_tokens
            .iter()
            .filter(|(_, t)| {
                t.policies
                    .iter()
                    .any(|l| l.id == stored.id && l.name != stored.name)
            })
            .map(|(k, t)| {
                let mut t = t.clone();
                for link in t.policies.iter_mut().filter(|l| l.id == stored.id) {
                    link.name = stored.name.clone();
                }
                (k.clone(), t)
            })
            .collect();
        self.acl_tokens.extend(renamed);
        self.acl_policies.insert(stored.id.clone(), stored);
        Ok(vec![Topic::Acl])
    }

    pub(super) fn delete_acl_policy(&mut self, id: &str) -> Result<Vec<Topic>, Refusal> {
        if id == GLOBAL_MANAGEMENT_POLICY_ID {
            return Err(Refusal::Invalid(
                "Deletion of the builtin global-management policy is not permitted".into(),
            ));
        }
        Ok(match self.acl_policies.remove(id) {
            Some(_) => vec![Topic::Acl],
            None => Vec::new(),
        })
    }

    pub(super) fn set_acl_role(
        &mut self,
        index: u64,
        role: &AclRole,
    ) -> Result<Vec<Topic>, Refusal> {
        role.validate()?;
        if role.id.is_empty() {
            return Err(Refusal::Invalid("Invalid Role: no ID is set".into()));
        }
        if self
            .acl_roles
            .values()
            .any(|r| r.name == role.name && r.id != role.id)
        {
            return Err(Refusal::Invalid(format!(
                "Invalid Role: A Role with Name {:?} already exists",
                role.name
            )));
        }
        let mut stored = role.clone();
        stored.policies = self.resolve_policy_links(&role.policies)?;
        match self.acl_roles.get(&role.id) {
            Some(old) => {
                stored.create_index = old.create_index;
                stored.modify_index = old.modify_index;
                if *old == stored {
                    return Ok(Vec::new());
                }
            }
            None => stored.create_index = index,
        }
        stored.modify_index = index;
        self.acl_roles.insert(stored.id.clone(), stored);
        Ok(vec![Topic::Acl])
    }

    pub(super) fn delete_acl_role(&mut self, id: &str) -> Result<Vec<Topic>, Refusal> {
        Ok(match self.acl_roles.remove(id) {
            Some(_) => vec![Topic::Acl],
            None => Vec::new(),
        })
    }

    /// The one bootstrap: stores the first management token, refused once done (Consul's
    /// message, with the index to reset from).
    pub(super) fn acl_bootstrap(
        &mut self,
        index: u64,
        token: &AclToken,
    ) -> Result<Vec<Topic>, Refusal> {
        if let Some(done) = self.acl_bootstrap_index {
            return Err(Refusal::Invalid(format!(
                "ACL bootstrap no longer allowed (reset index: {done})"
            )));
        }
        let mut touched = self.set_acl_token(index, token)?;
        self.acl_bootstrap_index = Some(index);
        touched.push(Topic::Acl);
        touched.dedup();
        Ok(touched)
    }
}
