package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current output")

// TestGoodFiles loads every testdata/*.good.yaml, which must default and
// validate cleanly, and compares the defaulted objects with the golden JSON.
func TestGoodFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.good.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no good files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := Load(data)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got, err := json.MarshalIndent(objs, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(file, ".good.yaml") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("defaulted objects differ from %s (go test -update rewrites it)\ngot:\n%s", golden, got)
			}
			for i, o := range objs {
				checkRoundTrip(t, o)
				before := mustJSON(t, o)
				o.Default()
				if after := mustJSON(t, o); after != before {
					t.Errorf("object %d: Default is not idempotent:\nbefore %s\nafter  %s", i, before, after)
				}
			}
		})
	}
}

// checkRoundTrip encodes o and decodes it again: what Ferry writes (status
// included) must be accepted by its own strict decoder unchanged.
func checkRoundTrip(t *testing.T, o Object) {
	t.Helper()
	enc := mustJSON(t, o)
	back, err := Decode([]byte(enc))
	if err != nil {
		t.Fatalf("decoding own output: %v\n%s", err, enc)
	}
	if len(back) != 1 {
		t.Fatalf("decoding own output gave %d objects", len(back))
	}
	if got := mustJSON(t, back[0]); got != enc {
		t.Errorf("round trip changed the object:\nwas %s\nnow %s", enc, got)
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBadFiles loads every testdata/*.bad.yaml; each must fail with every
// substring given on its leading "# error: " lines.
func TestBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for line := range strings.SplitSeq(string(data), "\n") {
				if msg, ok := strings.CutPrefix(line, "# error: "); ok {
					want = append(want, msg)
				}
			}
			if len(want) == 0 {
				t.Fatal("no '# error: ' lines")
			}
			objs, err := Load(data)
			if err == nil {
				t.Fatalf("Load succeeded with %d objects; want errors %q", len(objs), want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q\ngot: %v", w, err)
				}
			}
		})
	}
}

func TestValidationErrorsSortedAndComplete(t *testing.T) {
	data, err := os.ReadFile("testdata/extensions.bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	objs[0].Default()
	err = objs[0].Validate()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %T %v, want *ValidationError", err, err)
	}
	var paths []string
	for _, fe := range ve.Errors {
		paths = append(paths, fe.Path)
	}
	want := []string{
		"spec.predictor.canaryTrafficPercent",
		"spec.predictor.containerConcurrency",
		"spec.predictor.minReplicas",
		"spec.predictor.scaleMetric",
		"spec.predictor.scaleTarget",
		"spec.predictor.timeout",
	}
	if strings.Join(paths, ",") != strings.Join(want, ",") {
		t.Errorf("paths = %v, want %v", paths, want)
	}
}

func TestDecodeGroupsAndKinds(t *testing.T) {
	data, err := os.ReadFile("testdata/multimodel.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		kind, group, version, name string
	}{
		{KindInferenceService, GroupKubeflow, VersionInferenceService, "sklearn-iris-example"},
		{KindTrainedModel, GroupKubeflow, VersionTrainedModel, "model1-sklearn"},
		{KindTrainedModel, GroupKServe, VersionTrainedModel, "model2-sklearn"},
	}
	if len(objs) != len(tests) {
		t.Fatalf("got %d objects, want %d", len(objs), len(tests))
	}
	for i, tt := range tests {
		tm := objs[i].Type()
		if tm.Kind != tt.kind || tm.Group() != tt.group || tm.Version() != tt.version || objs[i].Meta().Name != tt.name {
			t.Errorf("object %d = %s %s/%s %q, want %s %s/%s %q", i, tm.Kind, tm.Group(), tm.Version(),
				objs[i].Meta().Name, tt.kind, tt.group, tt.version, tt.name)
		}
	}
	tm := objs[1].(*TrainedModel)
	if tm.Spec.InferenceService != "sklearn-iris-example" || tm.Spec.Model.Memory != "256Mi" || tm.Spec.Model.Framework != "sklearn" {
		t.Errorf("trained model spec = %+v", tm.Spec)
	}
}

func TestDecodeEmpty(t *testing.T) {
	for _, in := range []string{"", "\n", "---\n", "# only a comment\n---\n---\n"} {
		objs, err := Decode([]byte(in))
		if err != nil || len(objs) != 0 {
			t.Errorf("Decode(%q) = %d objects, %v; want none", in, len(objs), err)
		}
	}
}

func TestDecodeRejectsNonObjects(t *testing.T) {
	for _, in := range []string{"- a\n- b\n", "42\n", "just text\n", "{"} {
		if _, err := Decode([]byte(in)); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("Decode(%q) error = %v; want ErrInvalid", in, err)
		}
	}
}

func TestSplitDocumentsLines(t *testing.T) {
	in := "a: 1\n---\nb: 2\n--- # comment\n\nc: 3\n---x: not a separator\n"
	docs := splitDocuments([]byte(in))
	var got []string
	for _, d := range docs {
		got = append(got, strings.TrimSpace(string(d.text))+"@"+itoa(d.line))
	}
	want := "a: 1@1|b: 2@3|c: 3\n---x: not a separator@5"
	if strings.Join(got, "|") != want {
		t.Errorf("documents = %q, want %q", strings.Join(got, "|"), want)
	}
}
