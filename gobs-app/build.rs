//! Turns on `cfg(gobs_require_all)` when `CI` or `GOBS_REQUIRE_PRIVILEGED` is set, so tests that
//! need root, packages or a Goblins install run and fail naming what is missing, instead of
//! being reported as ignored (see gobs-testkit). Inline, not a build-dependency, so users of
//! this crate build nothing of the test kit.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(gobs_require_all)");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=GOBS_REQUIRE_PRIVILEGED");
    let set = |name| std::env::var(name).is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
    if set("CI") || set("GOBS_REQUIRE_PRIVILEGED") {
        println!("cargo::rustc-cfg=gobs_require_all");
    }
}
