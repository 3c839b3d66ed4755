package filters

import "testing"

func TestParseBothForms(t *testing.T) {
	for _, raw := range []string{`{"status":{"running":true}}`, `{"status":["running"]}`} {
		a, err := Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if !a.Match("status", "running") || a.Match("status", "exited") {
			t.Fatalf("%s: wrong match %v", raw, a)
		}
	}
	if _, err := Parse(`{"status":`); err == nil {
		t.Fatal("malformed filters accepted")
	}
}

func TestLabels(t *testing.T) {
	a, _ := Parse(`{"label":{"app=web":true,"tier":true}}`)
	if !a.MatchLabels("label", map[string]string{"app": "web", "tier": "x"}) {
		t.Fatal("labels should match")
	}
	if a.MatchLabels("label", map[string]string{"app": "db", "tier": "x"}) {
		t.Fatal("wrong value matched")
	}
	if a.MatchLabels("label", map[string]string{"app": "web"}) {
		t.Fatal("missing key matched")
	}
	if err := a.Validate("status"); err == nil {
		t.Fatal("label should be rejected when not allowed")
	}
}
