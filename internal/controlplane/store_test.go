package controlplane

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestStorePersistsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"default/a", "default/b", "team/a"} {
		if err := s.Put(KindInferenceService, k, []byte(`"`+k+`"`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(KindRevision, "default/a/predictor/a-predictor-00001", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	// A second opener is refused while the first holds the file.
	if _, err := OpenStore(dir); err == nil || !strings.Contains(err.Error(), "another ferry up") {
		t.Fatalf("second open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keys, vals, err := s.List(KindInferenceService, "default/")
	if err != nil || len(keys) != 2 || string(vals[1]) != `"default/b"` {
		t.Fatalf("List = %v %q %v", keys, vals, err)
	}
	if err := s.Delete(KindRevision, "default/a/", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(KindRevision, "default/a/predictor/a-predictor-00001"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revision survived prefix delete: %v", err)
	}
	if v, err := s.Get(KindInferenceService, "team/a"); err != nil || string(v) != `"team/a"` {
		t.Fatalf("Get = %q %v", v, err)
	}
}

// TestStoreModifyIsAtomic: concurrent read-modify-writes never lose an
// update (the status writer and apply used to race this way).
func TestStoreModifyIsAtomic(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				err := s.Modify(KindEvent, "n", func(old []byte) ([]byte, error) {
					n := 0
					if old != nil {
						n, _ = strconv.Atoi(string(old))
					}
					return []byte(strconv.Itoa(n + 1)), nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	v, err := s.Get(KindEvent, "n")
	if err != nil || string(v) != "200" {
		t.Fatalf("counter %q %v, want 200", v, err)
	}
	// nil from f writes nothing.
	if err := s.Modify(KindEvent, "absent", func([]byte) ([]byte, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(KindEvent, "absent"); err == nil {
		t.Fatal("nil result stored")
	}
}
