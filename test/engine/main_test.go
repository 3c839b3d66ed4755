// Package engine_test is the engine's acceptance suite: berth-agent runs
// natively, a registry runs in-process, and the stock docker CLI drives it.
package engine_test
