//! Fitting an answer to its transport, as Consul's `trimUDPResponse`/`trimTCPResponse` do.
//!
//! Whole answers are dropped (with the ADDITIONAL records only they needed) rather than
//! letting the encoder cut the message wherever the limit falls: a client then gets a
//! random, self-consistent subset. Whether the TC bit is set is the caller's choice
//! (`enable_truncate`), since most stub resolvers would rather use the subset than retry.

use std::collections::HashSet;

use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::answer::Answer;

/// Consul's ceiling on answers over UDP without EDNS, whatever `udp_answer_limit` says:
/// ~25 A or ~14 AAAA records fit in 512 bytes, and fewer keep responses quick.
const MAX_UDP_ANSWER_LIMIT: usize = 8;
/// RFC 1035's UDP payload limit for clients that did not advertise EDNS.
const DEFAULT_UDP_SIZE: usize = 512;
/// Largest EDNS size honoured: bigger datagrams would not leave the host.
const MAX_UDP_SIZE: usize = u16::MAX as usize - 68;
/// Largest DNS message over TCP, less Consul's margin.
const MAX_TCP_SIZE: usize = 65523;

/// What one response may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Bytes the encoded message may take.
    pub max_size: usize,
    /// Answers kept before any measuring, and whether dropping them counts as trimming.
    pub max_answers: usize,
    pub count_answer_cap: bool,
}

impl Limits {
    /// `edns_size` is the payload size the client advertised, if it used EDNS.
    pub fn udp(edns_size: Option<u16>, udp_answer_limit: usize) -> Self {
        let size = edns_size
            .map_or(DEFAULT_UDP_SIZE, usize::from)
            .clamp(DEFAULT_UDP_SIZE, MAX_UDP_SIZE);
        let max_answers = if size == DEFAULT_UDP_SIZE {
            udp_answer_limit.min(MAX_UDP_ANSWER_LIMIT)
        } else {
            usize::MAX
        };
        Limits {
            // Consul keeps 8 bytes spare, for the UDP header.
            max_size: size - 8,
            max_answers,
            count_answer_cap: true,
        }
    }

    /// TCP answers are capped only by the 64 KiB message size; more than 1024 SRV or 4096
    /// other records could never fit, so those are cut before measuring.
    pub fn tcp(qtype: RecordType) -> Self {
        Limits {
            max_size: MAX_TCP_SIZE,
            max_answers: if qtype == RecordType::SRV { 1024 } else { 4096 },
            count_answer_cap: false,
        }
    }
}

/// Drops answers from the end until `measure` (the encoded size) fits `limits`, keeping
/// at least one answer. Returns whether records were dropped.
pub(crate) fn trim(
    answer: &mut Answer,
    limits: &Limits,
    measure: impl Fn(&Answer) -> usize,
) -> bool {
    let all_additional = answer.additional.clone();
    let mut trimmed = false;
    if answer.answers.len() > limits.max_answers {
        answer.answers.truncate(limits.max_answers);
        sync_additional(answer, &all_additional);
        trimmed = limits.count_answer_cap;
    }
    while answer.answers.len() > 1 && measure(answer) > limits.max_size {
        trimmed = true;
        answer.authority.clear();
        let keep = largest_fitting(answer, &all_additional, limits.max_size, &measure);
        answer
            .answers
            .truncate(keep.clamp(1, answer.answers.len() - 1));
        sync_additional(answer, &all_additional);
    }
    trimmed
}

/// The most leading answers that fit `max_size`, by binary search over the prefix length.
fn largest_fitting(
    answer: &Answer,
    all_additional: &[Record],
    max_size: usize,
    measure: &impl Fn(&Answer) -> usize,
) -> usize {
    let mut probe = answer.clone();
    let (mut fits, mut too_big) = (0, answer.answers.len());
    while too_big - fits > 1 {
        let mid = fits + (too_big - fits) / 2;
        probe.answers = answer.answers[..mid].to_vec();
        sync_additional(&mut probe, all_additional);
        if measure(&probe) <= max_size {
            fits = mid;
        } else {
            too_big = mid;
        }
    }
    fits
}

/// Keeps the ADDITIONAL records that some remaining SRV answer points at (Consul's
/// `syncExtra`); with no SRV answers there is nothing to keep them for.
fn sync_additional(answer: &mut Answer, all_additional: &[Record]) {
    let targets: HashSet<Name> = answer
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some(srv.target.to_lowercase()),
            _ => None,
        })
        .collect();
    answer.additional = all_additional
        .iter()
        .filter(|r| targets.contains(&r.name.to_lowercase()))
        .cloned()
        .collect();
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use hickory_proto::op::ResponseCode;

    use super::super::answer;
    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn srv_answer(n: u8) -> Answer {
        let mut a = Answer::new(ResponseCode::NoError);
        for i in 0..n {
            let target = name(&format!("n{i}.node.dc1.consul."));
            a.answers.push(answer::srv(
                name("web.service.consul."),
                0,
                1,
                80,
                target.clone(),
            ));
            a.additional.push(answer::address(
                target,
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)),
                0,
            ));
        }
        a
    }

    /// A stand-in size: 50 bytes a record.
    fn size(a: &Answer) -> usize {
        12 + 50 * (a.answers.len() + a.authority.len() + a.additional.len())
    }

    #[test]
    fn udp_without_edns_caps_answers_and_keeps_matching_glue() {
        let mut a = srv_answer(20);
        assert!(trim(&mut a, &Limits::udp(None, 3), size));
        assert_eq!(a.answers.len(), 3);
        assert_eq!(a.additional.len(), 3);
        for (srv, glue) in a.answers.iter().zip(&a.additional) {
            let RData::SRV(srv) = &srv.data else { panic!() };
            assert_eq!(srv.target, glue.name);
        }
    }

    #[test]
    fn udp_with_edns_trims_by_size_only() {
        let mut a = srv_answer(100);
        assert!(trim(&mut a, &Limits::udp(Some(4096), 3), size));
        assert!(size(&a) <= 4096 - 8);
        assert!(a.answers.len() > 30, "kept {}", a.answers.len());
        let mut small = srv_answer(5);
        assert!(!trim(&mut small, &Limits::udp(Some(4096), 3), size));
        assert_eq!(small.answers.len(), 5);
    }

    #[test]
    fn one_answer_is_always_kept_and_tcp_cap_is_not_trimming() {
        let mut a = srv_answer(3);
        let huge = |_: &Answer| 100_000;
        assert!(trim(&mut a, &Limits::udp(Some(4096), 3), huge));
        assert_eq!(a.answers.len(), 1);
        let mut many = Answer::new(ResponseCode::NoError);
        many.answers = (0..5000)
            .map(|_| {
                answer::address(
                    name("web.service.consul."),
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    0,
                )
            })
            .collect::<Vec<Record>>();
        assert!(!trim(&mut many, &Limits::tcp(RecordType::A), |a| a
            .answers
            .len()));
        assert_eq!(many.answers.len(), 4096);
    }
}
