//! The leader's part of the ACL system: the built-in objects exist once ACLs are on.

use super::structs::{anonymous_token, global_management_policy, AclLink, AclLookup, AclToken};
use super::GLOBAL_MANAGEMENT_POLICY_ID;
use crate::connect::structs::Timestamp;
use crate::prepared_query::new_query_id;
use crate::rpc::RpcError;
use crate::structs::Command;
use crate::Server;

/// A management token: one link to `global-management`.
pub fn management_token(accessor_id: String, secret_id: String, description: &str) -> AclToken {
    AclToken {
        accessor_id,
        secret_id,
        description: description.to_string(),
        policies: vec![AclLink {
            id: GLOBAL_MANAGEMENT_POLICY_ID.to_string(),
            name: "global-management".to_string(),
        }],
        create_time: Timestamp::now().to_rfc3339(),
        ..AclToken::default()
    }
}

impl Server {
    /// On the leader with ACLs enabled: writes the `global-management` policy and the
    /// anonymous token when they are missing, and the `tokens.initial_management` token
    /// (which also ends bootstrapping, as in Consul). A no-op otherwise, so it runs on
    /// every housekeeping tick; every write is checked again when applied.
    pub async fn manage_acl(&self) -> Result<(), RpcError> {
        let acl = &self.config().acl;
        if !acl.enabled || !self.is_leader() {
            return Ok(());
        }
        let initial = acl.initial_management.expose().to_string();
        let (has_policy, has_anonymous, has_initial, bootstrapped) = self.state().read(|t| {
            (
                !t.acl_policies(&AclLookup::Id(GLOBAL_MANAGEMENT_POLICY_ID.into()))
                    .is_empty(),
                !t.acl_tokens(&AclLookup::Id(super::ANONYMOUS_TOKEN_ID.into()))
                    .is_empty(),
                initial.is_empty() || !t.acl_tokens(&AclLookup::Secret(initial.clone())).is_empty(),
                t.acl_bootstrap_index().is_some(),
            )
        });
        if !has_policy {
            self.apply(Command::AclPolicySet(global_management_policy()))
                .await?;
            tracing::info!("acl: created the global-management policy");
        }
        if !has_anonymous {
            self.apply(Command::AclTokenSet(anonymous_token())).await?;
            tracing::info!("acl: created the anonymous token");
        }
        if !has_initial {
            let token = management_token(new_query_id(), initial, "Initial Management Token");
            let command = if bootstrapped {
                Command::AclTokenSet(token)
            } else {
                Command::AclBootstrap(token)
            };
            self.apply(command).await?;
            tracing::info!("acl: created the initial management token");
        }
        Ok(())
    }
}
