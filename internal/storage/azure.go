package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// azureSource reads a container's blobs through the Azure SDK.
type azureSource struct {
	client *container.Client
	hc     *http.Client
	loc    location
}

func newAzureSource(cfg AzureConfig, loc location, idle time.Duration) (*azureSource, error) {
	account := loc.account
	if account == "" {
		account = cfg.Account
	}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		if account == "" {
			return nil, fmt.Errorf("%w: az:// needs a storage account (AZURE_STORAGE_ACCOUNT_NAME)", ErrInvalidURI)
		}
		endpoint = "https://" + account + ".blob.core.windows.net"
	}
	endpoint = strings.TrimSuffix(endpoint, "/") + "/"
	if account == "" { // Azurite style endpoint: http://host:port/<account>
		parts := strings.Split(strings.Trim(endpoint, "/"), "/")
		account = parts[len(parts)-1]
	}
	hc, err := httpClient(cfg.SkipVerify, "", idle)
	if err != nil {
		return nil, err
	}
	opts := &azblob.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: hc,
		Retry:     policy.RetryOptions{MaxRetries: -1}, // Pull retries with its own backoff
	}}
	sas := loc.sas
	if sas == "" {
		sas = strings.TrimPrefix(cfg.SASToken, "?")
	}
	var client *azblob.Client
	switch {
	case sas != "":
		client, err = azblob.NewClientWithNoCredential(endpoint+"?"+sas, opts)
	case cfg.AccountKey != "":
		var cred *azblob.SharedKeyCredential
		if cred, err = azblob.NewSharedKeyCredential(account, cfg.AccountKey); err == nil {
			client, err = azblob.NewClientWithSharedKeyCredential(endpoint, cred, opts)
		}
	default:
		client, err = azblob.NewClientWithNoCredential(endpoint, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: azure client: %w", ErrAccessDenied, err)
	}
	return &azureSource{client: client.ServiceClient().NewContainerClient(loc.bucket), hc: hc, loc: loc}, nil
}

func (s *azureSource) list(ctx context.Context) ([]object, error) {
	if !s.loc.dirOnly {
		p, err := s.client.NewBlobClient(s.loc.key).GetProperties(ctx, nil)
		if err == nil {
			o := object{name: lastSegment(s.loc.key), key: s.loc.key, size: derefInt(p.ContentLength), ranges: true}
			if p.ETag != nil {
				o.version = string(*p.ETag)
			}
			if len(p.ContentMD5) == 16 {
				o.md5 = p.ContentMD5
			}
			return []object{o}, nil
		}
		if err = azureError(err); !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	prefix := s.loc.key
	if prefix != "" {
		prefix += "/"
	}
	var objs []object
	pager := s.client.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, azureError(err)
		}
		for _, b := range page.Segment.BlobItems {
			if b.Name == nil || strings.HasSuffix(*b.Name, "/") {
				continue
			}
			o := object{name: relName(s.loc.key, *b.Name), key: *b.Name, size: -1, ranges: true}
			if pr := b.Properties; pr != nil {
				o.size = derefInt(pr.ContentLength)
				if pr.ETag != nil {
					o.version = string(*pr.ETag)
				}
				if len(pr.ContentMD5) == 16 {
					o.md5 = pr.ContentMD5
				}
			}
			objs = append(objs, o)
		}
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("%w: no blob or prefix %q in container %q", ErrNotFound, s.loc.key, s.loc.bucket)
	}
	return objs, nil
}

func (s *azureSource) open(ctx context.Context, o object, off, n int64) (io.ReadCloser, error) {
	opts := &blob.DownloadStreamOptions{}
	if off > 0 || (n >= 0 && n != o.size) {
		opts.Range = blob.HTTPRange{Offset: off, Count: max(n, 0)}
	}
	if o.version != "" {
		etag := azcore.ETag(o.version)
		opts.AccessConditions = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: &etag}}
	}
	resp, err := s.client.NewBlobClient(o.key).DownloadStream(ctx, opts)
	if err != nil {
		return nil, azureError(err)
	}
	return resp.Body, nil
}

func (s *azureSource) close() error {
	s.hc.CloseIdleConnections()
	return nil
}

func derefInt(p *int64) int64 {
	if p == nil {
		return -1
	}
	return *p
}

func azureError(err error) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return err
	}
	switch code := re.StatusCode; {
	case re.ErrorCode == "ContainerNotFound":
		return fmt.Errorf("%w: container does not exist: %w", ErrNotFound, err)
	case code == 404:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case code == 401 || code == 403:
		return fmt.Errorf("%w: %w", ErrAccessDenied, err)
	case code == 412:
		return fmt.Errorf("%w: the blob changed during the download: %w", ErrVerify, err)
	case code >= 400 && code < 500 && code != 408 && code != 429:
		return fmt.Errorf("%w: %w", errFinal, err)
	}
	return err
}
