package graph

import "testing"

// TestConditions checks GJSON paths against gjson's documented answers
// (Exists() of gjson.Get on the same document), including the three
// conditions of KServe's switch sample.
func TestConditions(t *testing.T) {
	doc := `{
	  "source": "client",
	  "name": {"first": "Tom", "last": "Anderson"},
	  "age": 37,
	  "children": ["Sara", "Alex", "Jack"],
	  "fav.movie": "Deer Hunter",
	  "instances": [{"intval": 5, "strval": "blue-server-1"}, {"intval": 12, "strval": "red-server-2", "ok": true}],
	  "friends": [
	    {"first": "Dale", "last": "Murphy", "age": 44, "nets": ["ig", "fb", "tw"]},
	    {"first": "Roger", "last": "Craig", "age": 68, "nets": ["fb", "tw"]},
	    {"first": "Jane", "last": "Murphy", "age": 47, "nets": ["ig", "tw"]}
	  ],
	  "predictions": [1, 0, 2],
	  "empty": [],
	  "nothing": null
	}`
	cases := []struct {
		path string
		want bool
	}{
		{"source", true},
		{"name.last", true},
		{"name.middle", false},
		{"age", true},
		{"children.1", true},
		{"children.3", false},
		{"children.#", true},
		{"empty.#", true},
		{"nothing", true}, // null exists
		{"child*.2", true},
		{"c?ildren.0", true},
		{"zz*", false},
		{`fav\.movie`, true},
		{"fav.movie", false},
		{"friends.#.first", true},
		{`friends.#(last=="Murphy").first`, true},
		{`friends.#(last=="Smith").first`, false},
		{`friends.#(last=="Smith")#`, true}, // gjson answers [] for "all", which exists
		{"friends.#(age>45)", true},
		{"friends.#(age>100)", false},
		{"friends.#(age>=68)", true},
		{"friends.#(age<44)", false},
		{"friends.#(age<=44)", true},
		{"friends.#(age!=44)", true},
		{"friends.#(first%D*)", true},
		{"friends.#(first!%D*)", true},
		{"friends.#(first%Z*)", false},
		{`friends.#(nets.#(=="fb"))#.first`, true},
		{`friends.#(nets.#(=="xx")).first`, false},
		{"friends.#(middle)", false},
		{"friends.#(first)", true},
		{"predictions.#(==2)", true},
		{"predictions.#(>5)", false},
		{"instances.#(ok==~true)", true},
		{"instances.#(ok==~false)", true}, // missing reads as false
		{"instances.#(intval==~null)", false},
		{"@this", true},
		{"name|first", true},
		// KServe's docs/samples/graph/switch.yaml
		{"[@this].#(source==client)", true},
		{"[@this].#(source==server)", false},
		{"instances.#(intval>10)", true},
		{"instances.#(intval>20)", false},
		{"instances.#(strval%*red-server*)", true},
		{"instances.#(strval%*green-server*)", false},
	}
	for _, c := range cases {
		cond, err := ParseCondition(c.path)
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		if got := cond.Match([]byte(doc)); got != c.want {
			t.Errorf("%s: match %v, want %v", c.path, got, c.want)
		}
	}
	if must(t, "source").Match([]byte(`{"source": 1} trailing`)) {
		t.Error("a document with trailing data matched")
	}
	if must(t, "source").Match([]byte(`not json`)) {
		t.Error("a non-JSON document matched")
	}
}

func must(t *testing.T, path string) *Condition {
	t.Helper()
	c, err := ParseCondition(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConditionErrors(t *testing.T) {
	for _, path := range []string{"", "a..b", "a.#(b==1", "@reverse", "{a,b}", `a.#(b=="x)`, "[a"} {
		if _, err := ParseCondition(path); err == nil {
			t.Errorf("%q parsed; want an error", path)
		}
	}
}

func TestGlobMatchIsLinear(t *testing.T) {
	s := string(make([]byte, 5000))
	if globMatch(s, "*a*a*a*a*a*a*a*a*b") {
		t.Fatal("matched")
	}
	for _, c := range []struct {
		s, p string
		want bool
	}{{"red-server-2", "*red-server*", true}, {"abc", "a?c", true}, {"abc", "a?d", false}, {"", "*", true}, {"x", "", false}} {
		if got := globMatch(c.s, c.p); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v", c.s, c.p, got)
		}
	}
}

// FuzzCondition checks that no path or document makes parsing or matching
// panic or loop.
func FuzzCondition(f *testing.F) {
	f.Add("instances.#(strval%*red-server*)", `{"instances":[{"strval":"red-server"}]}`)
	f.Add("[@this].#(source==client)", `{"source":"client"}`)
	f.Add(`friends.#(nets.#(=="fb"))#.first`, `{"friends":[{"nets":["fb"],"first":"a"}]}`)
	f.Add("a.#.b.#(c>1)#", `{"a":[{"b":[{"c":2}]}]}`)
	f.Fuzz(func(t *testing.T, path, doc string) {
		c, err := ParseCondition(path)
		if err != nil {
			return
		}
		c.Match([]byte(doc))
	})
}
