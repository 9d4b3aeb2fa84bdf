//! Cached `TokenCache::get_token` cost: one task, and 8 concurrent tasks on a multi-threaded
//! runtime. `cargo bench -p forcelink-auth --bench cache`.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use forcelink_auth::flows::static_token::StaticToken;
use forcelink_auth::secret::AccessToken;
use forcelink_auth::{CacheConfig, ConnectionId, MemoryStore, SystemClock, TokenCache, UrlPolicy};

fn primed_cache(rt: &tokio::runtime::Runtime) -> TokenCache {
    let source = StaticToken::new(
        &UrlPolicy::new().allow_any_loopback(),
        "https://acme.my.salesforce.com",
        AccessToken::new("00D000000000001!AQ0bench"),
    )
    .unwrap();
    let clock = Arc::new(SystemClock);
    let cache = TokenCache::new(
        ConnectionId::new("bench"),
        Arc::new(source),
        Arc::new(MemoryStore::new(clock.clone())),
        clock,
        CacheConfig::default(),
    );
    rt.block_on(cache.get_token()).unwrap();
    cache
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cache = primed_cache(&rt);
    c.bench_function("get_token cached, 1 task", |b| {
        b.to_async(&rt).iter(|| async { cache.get_token().await.unwrap() });
    });

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let cache = primed_cache(&rt);
    c.bench_function("get_token cached, 8 concurrent tasks (per call)", |b| {
        b.iter_custom(|iters| {
            let per_task = iters.div_ceil(8).max(1);
            #[allow(clippy::disallowed_methods)] // benchmarks measure real elapsed time
            let start = Instant::now();
            rt.block_on(async {
                let tasks: Vec<_> = (0..8)
                    .map(|_| {
                        let cache = cache.clone();
                        tokio::spawn(async move {
                            for _ in 0..per_task {
                                std::hint::black_box(cache.get_token().await.unwrap());
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            });
            let elapsed = start.elapsed();
            // Scale to the number of calls criterion asked for.
            Duration::from_nanos((elapsed.as_nanos() as u64).saturating_mul(iters) / (per_task * 8))
        });
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
