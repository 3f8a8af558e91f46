//! One service's leaf: made here (key pair and CSR), signed by the leader, renewed in the
//! background. The renewal time is drawn once per certificate, uniformly between 60 % and
//! 90 % of its life, so a fleet's renewals spread out instead of hitting the leader at
//! once; after a root change each leaf is renewed within a random 30 s for the same reason.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rcgen::string::Ia5String;
use rcgen::{CertificateParams, KeyPair, SanType, PKCS_ECDSA_P256_SHA256};
use shoal_server::connect::spiffe::ServiceId;
use shoal_server::connect::structs::{IndexedCaRoots, IssuedCert, SignRequest, Timestamp};
use shoal_server::rpc::{Op, Request, Response, RpcError};
use tokio::sync::watch;

use super::{Cached, ConnectCache, ConnectError};

/// After a root change, the renewal is spread over this window.
const ROOT_CHANGE_WINDOW: Duration = Duration::from_secs(30);
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// A service registered a moment ago may not have reached the catalog yet: the first
/// signing retries for this long while the server says it is not registered.
const REGISTRATION_GRACE: Duration = Duration::from_secs(5);
/// While the leader's signing limit is reached, a request retries (jittered, as Consul's
/// agent does) for this long before the caller gets the 429.
const RATE_LIMIT_PATIENCE: Duration = Duration::from_secs(10);

/// When to renew a certificate valid from `after` to `before`: a random point between
/// 60 % and 90 % of its life.
pub fn renewal_time(after: Timestamp, before: Timestamp, rng: &mut impl Rng) -> Timestamp {
    let life = (before.0 - after.0).max(0) as f64;
    let at = life * rng.random_range(0.6..0.9);
    Timestamp(after.0 + at as i64)
}

/// A new key pair and its CSR for `service` in the roots' trust domain.
fn make_csr(
    cache: &ConnectCache,
    service: &str,
    roots: &IndexedCaRoots,
) -> Result<(KeyPair, String, String), ConnectError> {
    let internal = |e: rcgen::Error| ConnectError::Internal(format!("making a CSR: {e}"));
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(internal)?;
    let uri = ServiceId::new(&roots.trust_domain, &cache.datacenter, service).to_string();
    let mut params = CertificateParams::default();
    params.subject_alt_names = vec![SanType::URI(
        Ia5String::try_from(uri.clone()).map_err(internal)?,
    )];
    let csr = params.serialize_request(&key).map_err(internal)?;
    let pem = csr.pem().map_err(internal)?;
    Ok((key, pem, uri))
}

/// Asks the leader for a leaf for `service`, with a fresh key pair.
pub async fn fetch(
    cache: &ConnectCache,
    service: &str,
    roots: &IndexedCaRoots,
) -> Result<IssuedCert, ConnectError> {
    let (key, csr, _uri) = make_csr(cache, service, roots)?;
    let started = tokio::time::Instant::now();
    let mut backoff = Duration::from_millis(100);
    loop {
        let request = Request::new(Op::ConnectCaSign(SignRequest {
            node: cache.node.clone(),
            csr: csr.clone(),
        }));
        match cache.rpc.call(request).await {
            Ok(Response::IssuedCert(mut cert)) => {
                cert.private_key_pem = key.serialize_pem();
                return Ok(cert);
            }
            Ok(other) => {
                return Err(ConnectError::Internal(format!(
                    "unexpected answer to a signing request: {other:?}"
                )))
            }
            Err(RpcError::BadRequest(m))
                if m.contains("is not registered")
                    && cache.has_service(service)
                    && started.elapsed() < REGISTRATION_GRACE =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(RpcError::RateLimited) if started.elapsed() < RATE_LIMIT_PATIENCE => {
                let jittered = rand::rng().random_range(backoff / 2..=backoff);
                tokio::time::sleep(jittered).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Caches `first` and keeps it renewed until the service is gone, the cache forgets it
/// (the last receiver dropped) or the agent stops.
pub fn spawn(
    cache: Arc<ConnectCache>,
    service: String,
    first: IssuedCert,
) -> watch::Receiver<Option<Cached<IssuedCert>>> {
    let (tx, rx) = watch::channel(Some(Cached::fresh(first.modify_index.max(1), first)));
    tokio::spawn(renew_forever(cache, service, tx));
    rx
}

async fn renew_forever(
    cache: Arc<ConnectCache>,
    service: String,
    tx: watch::Sender<Option<Cached<IssuedCert>>>,
) {
    let mut shutdown = cache.shutdown.clone();
    let mut roots = cache.roots_watch();
    let mut signed_under = active_root(&roots.borrow());
    loop {
        let Some(current) = tx.borrow().clone() else {
            return;
        };
        let renew_at = renewal_time(
            current.value.valid_after,
            current.value.valid_before,
            &mut rand::rng(),
        );
        let until_renewal = Duration::from_secs((renew_at.0 - Timestamp::now().0).max(0) as u64);
        tokio::select! {
            _ = tokio::time::sleep(until_renewal) => {}
            changed = wait_for_root_change(&mut roots, &signed_under) => {
                if !changed {
                    return;
                }
                let jitter = rand::rng().random_range(Duration::ZERO..ROOT_CHANGE_WINDOW);
                tracing::info!(service, ?jitter, "connect: the CA root changed; renewing the leaf");
                tokio::select! {
                    _ = tokio::time::sleep(jitter) => {}
                    _ = shutdown.changed() => return,
                }
            }
            _ = shutdown.changed() => return,
            // Forgotten by the cache (its service was deregistered): nobody reads it.
            _ = tx.closed() => return,
        }
        if !cache.has_service(&service) {
            cache.forget_leaf(&service);
            return;
        }
        let mut retry = RETRY_MIN;
        let mut warned = false;
        loop {
            let root_now = roots.borrow().clone();
            let renewed = match root_now {
                Some(r) => fetch(&cache, &service, &r.value).await,
                None => Err(ConnectError::NoRoots),
            };
            match renewed {
                Ok(cert) => {
                    signed_under = active_root(&roots.borrow());
                    let index = cert.modify_index.max(current.index + 1);
                    tx.send_replace(Some(Cached::fresh(index, cert)));
                    if warned {
                        tracing::info!(service, "connect: leaf renewed; servers answer again");
                    }
                    break;
                }
                Err(e) => {
                    let expires = current.value.valid_before;
                    if Timestamp::now() >= expires {
                        tracing::error!(service, error = %e, "connect: the cached leaf has expired and cannot be renewed");
                    } else if !warned {
                        tracing::warn!(
                            service,
                            error = %e,
                            expires = %expires.to_rfc3339(),
                            "connect: cannot renew the leaf; serving the cached one until it expires"
                        );
                    }
                    warned = true;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(retry) => {}
                _ = shutdown.changed() => return,
            }
            retry = (retry * 2).min(RETRY_MAX);
        }
    }
}

fn active_root(roots: &Option<Cached<IndexedCaRoots>>) -> String {
    roots
        .as_ref()
        .map(|r| r.value.active_root_id.clone())
        .unwrap_or_default()
}

/// Resolves `true` once the active root differs from `signed_under`; `false` if the
/// roots watcher is gone.
async fn wait_for_root_change(
    roots: &mut watch::Receiver<Option<Cached<IndexedCaRoots>>>,
    signed_under: &str,
) -> bool {
    loop {
        let active = active_root(&roots.borrow_and_update());
        if !active.is_empty() && active != signed_under {
            return true;
        }
        if roots.changed().await.is_err() {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn renewal_falls_between_60_and_90_percent_of_the_life() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let after = Timestamp(1_000_000);
        let before = after.plus(Duration::from_secs(72 * 3600));
        let life = (before.0 - after.0) as f64;
        let fractions: Vec<f64> = (0..1000)
            .map(|_| (renewal_time(after, before, &mut rng).0 - after.0) as f64 / life)
            .collect();
        assert!(fractions.iter().all(|f| (0.6..0.9).contains(f)));
        let spread = fractions.iter().cloned().fold(f64::MIN, f64::max)
            - fractions.iter().cloned().fold(f64::MAX, f64::min);
        assert!(spread > 0.25, "renewals spread over the window: {spread}");
    }
}
