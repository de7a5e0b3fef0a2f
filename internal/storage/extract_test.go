package storage

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnpackRefusesUnsafeArchives(t *testing.T) {
	big := strings.Repeat("x", 2000)
	for _, tc := range []struct {
		name    string
		entries []entry
		kind    error
		zipToo  bool
	}{
		{"climbs out", []entry{{name: "../evil", body: "x"}}, ErrUnsafeArchive, true},
		{"climbs out deeper", []entry{{name: "a/../../evil", body: "x"}}, ErrUnsafeArchive, true},
		{"absolute", []entry{{name: "/etc/evil", body: "x"}}, ErrUnsafeArchive, true},
		{"windows absolute", []entry{{name: "C:/evil", body: "x"}}, ErrUnsafeArchive, true},
		{"symlink out", []entry{{name: "l", link: "../../etc/passwd", typ: tar.TypeSymlink}}, ErrUnsafeArchive, true},
		{"symlink absolute", []entry{{name: "l", link: "/etc/passwd", typ: tar.TypeSymlink}}, ErrUnsafeArchive, true},
		{"write through symlink", []entry{{name: "d", link: ".", typ: tar.TypeSymlink}, {name: "d/x", body: "x"}}, nil, false},
		{"link under link", []entry{{name: "d", link: "sub", typ: tar.TypeSymlink}, {name: "sub/", typ: tar.TypeDir},
			{name: "d/l", link: "../..", typ: tar.TypeSymlink}}, ErrUnsafeArchive, true},
		{"chain climbs out", []entry{{name: "a/", typ: tar.TypeDir}, {name: "a/b", link: ".", typ: tar.TypeSymlink},
			{name: "c", link: "a/b/../..", typ: tar.TypeSymlink}}, ErrUnsafeArchive, false},
		{"hard link out", []entry{{name: "h", link: "../../etc/passwd", typ: tar.TypeLink}}, ErrUnsafeArchive, false},
		{"device", []entry{{name: "dev", typ: tar.TypeChar}}, ErrUnsafeArchive, false},
		{"too large", []entry{{name: "a", body: big}, {name: "b", body: big}}, ErrTooLarge, true},
	} {
		kinds := map[string][]byte{"tar": makeTar(t, false, tc.entries...), "tgz": makeTar(t, true, tc.entries...)}
		if tc.zipToo {
			kinds["zip"] = makeZip(t, tc.entries...)
		}
		for kind, data := range kinds {
			t.Run(tc.name+"/"+kind, func(t *testing.T) {
				parent := t.TempDir()
				src := filepath.Join(parent, "a."+kind)
				dst := filepath.Join(parent, "out")
				if err := os.WriteFile(src, data, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Mkdir(dst, 0o755); err != nil {
					t.Fatal(err)
				}
				err := unpack(t.Context(), src, kind, dst, budget{max: 3000})
				if err == nil {
					t.Fatal("unpacked, want an error")
				}
				if tc.kind != nil && !errors.Is(err, tc.kind) {
					t.Errorf("got %v, want %v", err, tc.kind)
				}
				assertOnly(t, parent, "a."+kind, "out")
			})
		}
	}
}

// assertOnly checks nothing was written beside the target directory.
func assertOnly(t *testing.T, parent string, want ...string) {
	t.Helper()
	es, _ := os.ReadDir(parent)
	if got := strings.Join(names(es), ","); got != strings.Join(want, ",") {
		t.Errorf("parent holds %s, want %s", got, strings.Join(want, ","))
	}
}

func TestUnpackAcceptsInsideLinks(t *testing.T) {
	parent := t.TempDir()
	src := filepath.Join(parent, "a.tar")
	data := makeTar(t, false,
		entry{name: "blobs/abc", body: "weights"},
		entry{name: "snap/v1/model.bin", link: "../../blobs/abc", typ: tar.TypeSymlink},
		entry{name: "copy.bin", link: "blobs/abc", typ: tar.TypeLink},
		entry{name: "./dot/file", body: "ok"},
	)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(parent, "out")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unpack(t.Context(), src, "tar", dst, budget{max: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	got := readTree(t, dst)
	want := map[string]string{"blobs/abc": "weights", "snap/v1/model.bin": "-> ../../blobs/abc", "copy.bin": "weights", "dot/file": "ok"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dst, "snap/v1/model.bin")); err != nil || string(b) != "weights" {
		t.Errorf("reading through the link: %q, %v", b, err)
	}
}

// A pull of an unsafe archive fails and leaves nothing in the cache.
func TestPullUnsafeArchiveLeavesNothing(t *testing.T) {
	srv := newFileServer(t, map[string][]byte{"/evil.tgz": makeTar(t, true, entry{name: "ok", body: "x"}, entry{name: "../evil", body: "x"})})
	p := newTestPuller(t, Config{})
	_, err := p.Pull(t.Context(), srv.URL+"/evil.tgz")
	if !errors.Is(err, ErrUnsafeArchive) {
		t.Fatalf("got %v", err)
	}
	mustContain(t, err, "/evil.tgz", `"../evil"`)
	assertCache(t, p.cfg.CacheDir, 0)
}

func fuzzUnpack(f *testing.F, kind string, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		src := filepath.Join(parent, "a."+kind)
		dst := filepath.Join(parent, "out")
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		err := unpack(t.Context(), src, kind, dst, budget{max: 1 << 20})
		assertOnly(t, parent, "a."+kind, "out")
		if err != nil {
			return // the caller discards dst
		}
		// A successful unpack leaves no link resolving outside dst.
		root, _ := filepath.EvalSymlinks(dst)
		_ = filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.Type()&os.ModeSymlink == 0 {
				return nil
			}
			if real, err := filepath.EvalSymlinks(p); err == nil && !strings.HasPrefix(real+"/", root+"/") {
				t.Errorf("link %s resolves to %s, outside %s", p, real, root)
			}
			return nil
		})
	})
}

func FuzzUnpackTar(f *testing.F) {
	fuzzUnpack(f, "tar",
		makeTar(f, false, entry{name: "a/b", body: "x"}, entry{name: "l", link: "a/b", typ: tar.TypeSymlink}),
		makeTar(f, false, entry{name: "../x", body: "x"}),
		makeTar(f, false, entry{name: "d", link: ".", typ: tar.TypeSymlink}, entry{name: "d/l", link: "..", typ: tar.TypeSymlink}))
}

func FuzzUnpackTgz(f *testing.F) {
	fuzzUnpack(f, "tgz", makeTar(f, true, entry{name: "m.json", body: "{}"}, entry{name: "h", link: "m.json", typ: tar.TypeLink}))
}

func FuzzUnpackZip(f *testing.F) {
	fuzzUnpack(f, "zip",
		makeZip(f, entry{name: "a/b", body: "x"}, entry{name: "l", link: "a/b", typ: tar.TypeSymlink}),
		makeZip(f, entry{name: "/abs", body: "x"}))
}
