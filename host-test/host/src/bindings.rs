//! Host bindings generated from the one WIT source of truth, `../../wit` (the workspace's `wit/`).

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "sms-notification",
    imports: { default: async | trappable },
    exports: { default: async },
});
