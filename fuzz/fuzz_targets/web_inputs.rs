//! The approval UI's form and path inputs: no request without the device
//! credential approves, pairs or sets a cookie.
#![no_main]

use std::sync::OnceLock;

use agent_vaultd::fuzz_checks::WebTarget;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"))
    })
}

fn target() -> &'static WebTarget {
    static T: OnceLock<WebTarget> = OnceLock::new();
    T.get_or_init(|| {
        runtime()
            .block_on(WebTarget::new())
            .unwrap_or_else(|e| panic!("target: {e}"))
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let t = target();
    runtime().block_on(t.request(data));
});
