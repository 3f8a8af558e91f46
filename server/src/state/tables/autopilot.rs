//! The autopilot settings, once an operator has set them through the API.

use super::{Refusal, Tables, Topic};
use crate::structs::AutopilotConfig;

impl Tables {
    /// The autopilot settings last set through the operator API.
    pub fn autopilot(&self) -> Option<&AutopilotConfig> {
        self.autopilot.as_ref()
    }

    /// Replaces the settings; with `cas`, only if their `ModifyIndex` is still that (0:
    /// never set).
    pub(super) fn set_autopilot(
        &mut self,
        index: u64,
        config: &AutopilotConfig,
        cas: Option<u64>,
    ) -> Result<Vec<Topic>, Refusal> {
        let current = self.autopilot.as_ref().map_or(0, |c| c.modify_index);
        if cas.is_some_and(|cas| cas != current) {
            return Err(Refusal::CasFailed);
        }
        let create_index = self.autopilot.as_ref().map_or(index, |c| c.create_index);
        self.autopilot = Some(AutopilotConfig {
            create_index,
            modify_index: index,
            ..config.clone()
        });
        Ok(Vec::new())
    }
}
