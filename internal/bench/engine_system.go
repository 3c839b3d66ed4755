package main

import "time"

func init() {
	register(Scenario{
		Section: "Engine", Name: "docker version (API round trip)", Unit: "ms", Target: "–",
		Run: func(b *Bench, e *Engine) ([]float64, error) { return e.Time(b.N, "version") },
	})
	register(Scenario{
		Section: "Engine", Name: "engine idle RSS", Unit: "MB", Target: "≤ 40 MB",
		Run: func(b *Bench, e *Engine) ([]float64, error) {
			time.Sleep(2 * time.Second) // let start-up garbage be collected
			return []float64{RSS(e.Pids())}, nil
		},
	})
}
