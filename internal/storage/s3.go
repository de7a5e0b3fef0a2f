package storage

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// s3Source reads s3://bucket/key through the AWS SDK (signing included).
type s3Source struct {
	client *s3.Client
	hc     *http.Client
	loc    location
	noMD5  sync.Map // object key → true when its ETag is not an MD5 (SSE-KMS, SSE-C)
}

func newS3Source(cfg S3Config, loc location, idle time.Duration) (*s3Source, error) {
	hc, err := httpClient(cfg.SkipVerify, cfg.CABundle, idle)
	if err != nil {
		return nil, err
	}
	opts := s3.Options{
		Region:       cfg.Region,
		HTTPClient:   hc,
		UsePathStyle: !cfg.VirtualHost,
		Retryer:      aws.NopRetryer{}, // Pull retries with its own backoff
		// Ranged GETs carry no whole-object checksum; Pull checks size and MD5.
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		Credentials:                aws.AnonymousCredentials{},
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if cfg.AccessKeyID != "" && !cfg.Anonymous {
		opts.Credentials = credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)
	}
	if ep := cfg.Endpoint; ep != "" {
		if !strings.Contains(ep, "://") {
			ep = "https://" + ep
			if cfg.DisableHTTPS {
				ep = "http://" + strings.TrimPrefix(ep, "https://")
			}
		}
		opts.BaseEndpoint = aws.String(ep)
	}
	return &s3Source{client: s3.New(opts), hc: hc, loc: loc}, nil
}

func (s *s3Source) list(ctx context.Context) ([]object, error) {
	if !s.loc.dirOnly {
		out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.loc.bucket, Key: &s.loc.key})
		if err == nil {
			o := s3Object(s.loc.key, s.loc.key, aws.ToInt64(out.ContentLength), aws.ToString(out.ETag))
			if out.ServerSideEncryption == types.ServerSideEncryptionAwsKms ||
				out.ServerSideEncryption == types.ServerSideEncryptionAwsKmsDsse || out.SSECustomerAlgorithm != nil {
				o.md5 = nil
			}
			o.name = lastSegment(s.loc.key)
			return []object{o}, nil
		}
		if err = s3Error(err); !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	prefix := s.loc.key
	if prefix != "" {
		prefix += "/"
	}
	var objs []object
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.loc.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s3Error(err)
		}
		for _, c := range page.Contents {
			key := aws.ToString(c.Key)
			if strings.HasSuffix(key, "/") { // a "folder" marker
				continue
			}
			objs = append(objs, s3Object(relName(s.loc.key, key), key, aws.ToInt64(c.Size), aws.ToString(c.ETag)))
		}
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("%w: no object or prefix %q in bucket %q", ErrNotFound, s.loc.key, s.loc.bucket)
	}
	return objs, nil
}

// s3Object builds an object; a single-part ETag is the MD5 of the content.
func s3Object(name, key string, size int64, etag string) object {
	o := object{name: name, key: key, size: size, version: etag, ranges: true}
	if m, err := hex.DecodeString(strings.Trim(etag, `"`)); err == nil && len(m) == 16 {
		o.md5 = m
	}
	return o
}

func (s *s3Source) open(ctx context.Context, o object, off, n int64) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: &s.loc.bucket, Key: &o.key}
	if o.version != "" {
		in.IfMatch = aws.String(o.version)
	}
	if off > 0 || (n >= 0 && n != o.size) {
		end := ""
		if n >= 0 {
			end = fmt.Sprint(off + n - 1)
		}
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%s", off, end))
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		return nil, s3Error(err)
	}
	if out.ServerSideEncryption == types.ServerSideEncryptionAwsKms ||
		out.ServerSideEncryption == types.ServerSideEncryptionAwsKmsDsse || out.SSECustomerAlgorithm != nil {
		s.noMD5.Store(o.key, true)
	}
	return out.Body, nil
}

func (s *s3Source) md5Valid(o object) bool {
	_, bad := s.noMD5.Load(o.key)
	return !bad
}

func (s *s3Source) close() error {
	s.hc.CloseIdleConnections()
	return nil
}

// s3Error maps S3 error codes and statuses to sentinels.
func s3Error(err error) error {
	var api smithy.APIError
	code := ""
	if errors.As(err, &api) {
		code = api.ErrorCode()
	}
	status := 0
	var hs interface{ HTTPStatusCode() int }
	if errors.As(err, &hs) {
		status = hs.HTTPStatusCode()
	}
	switch code {
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
		"XAdminUserNotFound": // versitygw answers an unknown key with 404 and this code
		return fmt.Errorf("%w: %w", ErrAccessDenied, err)
	case "NoSuchBucket":
		return fmt.Errorf("%w: bucket does not exist: %w", ErrNotFound, err)
	}
	switch {
	case code == "NoSuchKey" || status == 404:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case status == 401 || status == 403:
		return fmt.Errorf("%w: %w", ErrAccessDenied, err)
	case code == "PreconditionFailed" || status == 412:
		return fmt.Errorf("%w: the object changed during the download: %w", ErrVerify, err)
	case status >= 400 && status < 500 && status != 408 && status != 429:
		return fmt.Errorf("%w: %w", errFinal, err)
	}
	return err
}

func lastSegment(key string) string {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		return key[i+1:]
	}
	return key
}
