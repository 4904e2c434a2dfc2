//! A Fly Machines API simulator, speaking the same HTTP API as `api.machines.dev`.
