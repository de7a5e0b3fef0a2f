package storage

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
)

// Azurite's documented development account.
const (
	azAccount = "devstoreaccount1"
	azKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// startAzurite runs Azurite's blob service on loopback and uploads objects
// into the private container "models". It returns the endpoint and a
// read+list SAS token for the container.
func startAzurite(t *testing.T, objects map[string][]byte) (endpoint, token string) {
	t.Helper()
	bin := findServer(t, "FERRY_TEST_AZURITE", "azurite-blob")
	port := freePort(t)
	startServer(t, port, bin, "--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(port), "--location", t.TempDir(),
		"--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry")
	endpoint = fmt.Sprintf("http://127.0.0.1:%d/%s", port, azAccount)
	cred, err := azblob.NewSharedKeyCredential(azAccount, azKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := azblob.NewClientWithSharedKeyCredential(endpoint+"/", cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := c.CreateContainer(ctx, "models", nil); err != nil {
		t.Fatalf("create container: %v", err)
	}
	for k, v := range objects {
		if _, err := c.UploadBuffer(ctx, "models", k, v, nil); err != nil {
			t.Fatalf("upload %s: %v", k, err)
		}
	}
	su, err := c.ServiceClient().NewContainerClient("models").GetSASURL(
		sas.ContainerPermissions{Read: true, List: true}, time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(su)
	if err != nil {
		t.Fatal(err)
	}
	return endpoint, u.RawQuery
}

func TestPullAzure(t *testing.T) {
	big := bigBody(250_000)
	endpoint, token := startAzurite(t, map[string][]byte{
		"lgb/v1/model.txt":  []byte("tree"),
		"lgb/v1/sub/a.json": []byte("{}"),
		"lgb/v10/other.txt": []byte("no"),
		"lgb/weights.bin":   big,
	})
	shared := AzureConfig{Endpoint: endpoint, Account: azAccount, AccountKey: azKey}
	p := newTestPuller(t, Config{Azure: shared, PartSize: 64 << 10})
	dir, err := p.Pull(t.Context(), "az://models/lgb/v1")
	if err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, dir); len(got) != 2 || got["model.txt"] != "tree" || got["sub/a.json"] != "{}" {
		t.Errorf("directory: %v", got)
	}
	dir, err = p.Pull(t.Context(), "az://models/lgb/weights.bin")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "weights.bin")); !bytes.Equal(got, big) {
		t.Error("weights.bin differs")
	}

	t.Run("SAS in the uri", func(t *testing.T) {
		p := newTestPuller(t, Config{Azure: AzureConfig{Endpoint: endpoint}})
		uri := "https://" + azAccount + ".blob.core.windows.net/models/lgb/v1?" + token
		dir, err := p.Pull(t.Context(), uri)
		if err != nil {
			t.Fatal(err)
		}
		if got := readTree(t, dir); got["model.txt"] != "tree" {
			t.Errorf("%v", got)
		}
		_, err = p.Pull(t.Context(), strings.Replace(uri, "/v1?", "/v2?", 1))
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing: %v", err)
		}
		mustContain(t, err, "blob.core.windows.net/models/lgb/v2")
		sig, _ := url.ParseQuery(token)
		if s := sig.Get("sig"); strings.Contains(err.Error(), s) || strings.Contains(err.Error(), url.QueryEscape(s)) {
			t.Errorf("error leaks the SAS signature: %v", err)
		}
	})
	t.Run("SAS from config", func(t *testing.T) {
		p := newTestPuller(t, Config{Azure: AzureConfig{Endpoint: endpoint, SASToken: token}})
		if _, err := p.Pull(t.Context(), "az://models/lgb/v1/model.txt"); err != nil {
			t.Fatal(err)
		}
	})
	for _, tc := range []struct {
		name, uri string
		cfg       AzureConfig
		kinds     []error
	}{
		{"missing blob", "az://models/lgb/v2", shared, []error{ErrNotFound}},
		{"missing container", "az://nosuch/lgb/v1", shared, []error{ErrNotFound}},
		{"wrong key", "az://models/lgb/v1", AzureConfig{Endpoint: endpoint, AccountKey: strings.Repeat("A", 86) + "=="}, []error{ErrAccessDenied}},
		// Azure hides private containers from anonymous callers: 404 or 401/403.
		{"anonymous", "az://models/lgb/v1", AzureConfig{Endpoint: endpoint}, []error{ErrAccessDenied, ErrNotFound}},
		{"no account", "az://models/lgb/v1", AzureConfig{}, []error{ErrInvalidURI}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			_, err := newTestPuller(t, Config{CacheDir: cache, Azure: tc.cfg}).Pull(t.Context(), tc.uri)
			ok := false
			for _, k := range tc.kinds {
				ok = ok || errors.Is(err, k)
			}
			if !ok {
				t.Fatalf("got %v, want one of %v", err, tc.kinds)
			}
			mustContain(t, err, tc.uri)
			if strings.Contains(err.Error(), azKey) || strings.Contains(err.Error(), strings.Repeat("A", 86)) {
				t.Errorf("error leaks the key: %v", err)
			}
			assertCache(t, cache, 0)
		})
	}
}
