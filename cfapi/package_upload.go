package cfapi

import (
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/appbits"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
)

// Feature flags that gate bits uploads and resource matching.
const (
	flagAppBitsUpload    = "app_bits_upload"
	flagResourceMatching = "resource_matching"
)

const (
	// registryTimeout bounds one push, copy or read of a package image.
	registryTimeout = 10 * time.Minute
	// maxResourcesFieldBytes bounds the "resources" field of an upload: a
	// JSON description of up to appbits' entry limit of matched files.
	maxResourcesFieldBytes = 64 << 20
	// multipartOverheadBytes allows for part headers and boundaries on top
	// of the zip and the resources field.
	multipartOverheadBytes = 1 << 20
	// staleUploadAge is the age after which an upload directory counts as
	// left over from a process that stopped mid-upload. It is far longer
	// than an upload takes.
	staleUploadAge = 24 * time.Hour
)

// Labels of a package image's config.
const (
	labelPackageGUID = "io.ferrycf.package.guid"
	labelAppGUID     = "io.ferrycf.app.guid"
)

// uploadConfig is the spool directory, resource cache and limits of
// package uploads.
type uploadConfig struct {
	spoolDir string
	cache    *appbits.Cache
	limits   appbits.Limits
}

func newUploadConfig(dataDir string, limits appbits.Limits) uploadConfig {
	if dataDir == "" {
		dataDir = filepath.Join(os.TempDir(), "ferry")
	}
	return uploadConfig{
		spoolDir: filepath.Join(dataDir, "uploads"),
		cache:    appbits.NewCache(filepath.Join(dataDir, "resource-cache")),
		limits:   limits.WithDefaults(),
	}
}

// errUploadInvalid is the 422 for an upload Ferry rejects. detail names the
// problem and the entry.
func errUploadInvalid(detail string) error {
	return apierr.UnprocessableEntity("The app upload is invalid: " + detail)
}

// errBitsAlreadyUploaded is Cloud Controller's error for a second upload
// to one package.
func errBitsAlreadyUploaded() error {
	return &apierr.Error{Status: http.StatusBadRequest, Code: 150004, Title: "CF-PackageBitsAlreadyUploaded",
		Detail: "Bits may be uploaded only once. Create a new package to upload different bits."}
}

// resourcePayload is one matched file, as in the "resources" field of an
// upload and in resource match requests.
type resourcePayload struct {
	Path     *string `json:"path"`
	Mode     *string `json:"mode"`
	Checksum *struct {
		Value *string `json:"value"`
	} `json:"checksum"`
	SizeInBytes *int64 `json:"size_in_bytes"`
}

// upload is a parsed multipart upload: matched resources and the spooled
// zip, when there is one.
type upload struct {
	resources []appbits.Resource
	// hasResources is true when the field was sent, even as "[]".
	hasResources bool
	zipPath      string
}

// uploadPackage serves POST /v3/packages/:guid/upload, the cf CLI's
// multipart upload of matched resources and package.zip. The upload is
// validated completely before the package changes: a rejected upload is a
// 422 that leaves the package AWAITING_UPLOAD, so the client may retry,
// and leaves no spool file, cache entry or image behind. An accepted one
// moves the package through PROCESSING_UPLOAD to READY, or to FAILED with
// data.error when the registry fails, and returns 200 with the package.
func (a *API) uploadPackage(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	pkg, err := a.writablePackage(r)
	if err != nil {
		return nil, err
	}
	if err := a.requireFeature(ctx, flagAppBitsUpload); err != nil {
		return nil, err
	}
	if pkg.Type != store.PackageTypeBits {
		return nil, apierr.UnprocessableEntity("Package type must be bits.")
	}
	if pkg.State != store.PackageAwaitingUpload {
		return nil, errBitsAlreadyUploaded()
	}

	work, err := a.uploadWorkDir(ctx)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	up, err := a.readUpload(r, work)
	if err != nil {
		return nil, err
	}
	appDir := filepath.Join(work, "app")
	files, err := appbits.Assemble(up.zipPath, up.resources, a.uploads.cache, appDir, a.uploads.limits)
	if err != nil {
		return nil, uploadError(err)
	}

	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		pkg, err = store.TransitionPackage(ctx, tx, pkg.GUID, []string{store.PackageAwaitingUpload},
			store.PackageResult{State: store.PackageProcessingUpload})
		if err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, packageEvent(actor, "audit.app.package.upload", pkg, nil))
	})
	if errors.Is(err, store.ErrNotFound) {
		// Another upload won the race, or the package was deleted.
		return nil, errBitsAlreadyUploaded()
	}
	if err != nil {
		return nil, err
	}

	pkg, err = a.pushPackage(ctx, pkg, appDir, work)
	if err != nil {
		return nil, err
	}
	if pkg.State == store.PackageReady {
		if err := a.uploads.cache.AddFiles(appDir, files); err != nil {
			loggerFrom(ctx, a.logger).Warn("adding uploaded files to the resource cache failed", "package_guid", pkg.GUID, "error", err)
		}
	}
	return ok(a.presentPackage(pkg)), nil
}

// requireFeature fails with CF-FeatureDisabled unless the flag is enabled.
func (a *API) requireFeature(ctx context.Context, flag string) error {
	enabled, message, err := a.featureEnabled(ctx, flag)
	if err != nil {
		return err
	}
	if !enabled {
		return apierr.FeatureDisabled(flag, message)
	}
	return nil
}

// uploadWorkDir creates a fresh directory for one upload's spool file,
// app directory and layer, after removing directories that stopped
// processes left behind.
func (a *API) uploadWorkDir(ctx context.Context) (string, error) {
	if err := os.MkdirAll(a.uploads.spoolDir, 0o700); err != nil {
		return "", fmt.Errorf("create upload spool directory: %w", err)
	}
	a.removeStaleUploads(ctx)
	work, err := os.MkdirTemp(a.uploads.spoolDir, "upload-")
	if err != nil {
		return "", fmt.Errorf("create upload directory: %w", err)
	}
	return work, nil
}

// removeStaleUploads removes upload directories older than
// staleUploadAge. Failures are logged and otherwise ignored.
func (a *API) removeStaleUploads(ctx context.Context) {
	entries, err := os.ReadDir(a.uploads.spoolDir)
	if err != nil {
		loggerFrom(ctx, a.logger).Warn("listing upload directories failed", "error", err)
		return
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !strings.HasPrefix(e.Name(), "upload-") || time.Since(info.ModTime()) < staleUploadAge {
			continue
		}
		if err := os.RemoveAll(filepath.Join(a.uploads.spoolDir, e.Name())); err != nil {
			loggerFrom(ctx, a.logger).Warn("removing a stale upload directory failed", "directory", e.Name(), "error", err)
			continue
		}
		loggerFrom(ctx, a.logger).Info("removed a stale upload directory", "directory", e.Name())
	}
}

// uploadError turns appbits' validation errors into 422s and passes other
// errors through.
func uploadError(err error) error {
	var invalid *appbits.InvalidError
	var missing *appbits.MissingResourceError
	switch {
	case errors.As(err, &invalid):
		return errUploadInvalid(invalid.Error())
	case errors.As(err, &missing):
		return errUploadInvalid(missing.Error() + ": push again so the file is uploaded")
	}
	return err
}

// readUpload reads the multipart body of r: the "resources" field and the
// "bits" file, which is spooled to work/package.zip without being held in
// memory. The body is limited to the zip limit plus room for the
// resources field.
func (a *API) readUpload(r *http.Request, work string) (upload, error) {
	contentType := r.Header.Get("Content-Type")
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil || mediaType != "multipart/form-data" || params["boundary"] == "" {
		return upload{}, apierr.UnprocessableEntity(fmt.Sprintf(
			"The upload must be multipart/form-data with a boundary, not '%s': send a 'resources' field and a 'bits' file field", shorten(contentType)))
	}
	maxBody := a.uploads.limits.MaxZipBytes + maxResourcesFieldBytes + multipartOverheadBytes
	reader := multipart.NewReader(http.MaxBytesReader(nil, r.Body, maxBody), params["boundary"])

	var up upload
	for {
		part, err := reader.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return upload{}, multipartError(err, maxBody)
		}
		err = a.readUploadPart(part, work, &up)
		part.Close()
		if err != nil {
			return upload{}, multipartError(err, maxBody)
		}
	}
	if up.zipPath == "" && len(up.resources) == 0 {
		return upload{}, apierr.UnprocessableEntity("Upload must include either resources or bits")
	}
	return up, nil
}

func (a *API) readUploadPart(part *multipart.Part, work string, up *upload) error {
	switch part.FormName() {
	case "resources":
		if up.hasResources {
			return apierr.UnprocessableEntity("The upload has more than one 'resources' field")
		}
		up.hasResources = true
		data, err := io.ReadAll(io.LimitReader(part, maxResourcesFieldBytes+1))
		if err != nil {
			return err
		}
		if len(data) > maxResourcesFieldBytes {
			return errUploadInvalid(fmt.Sprintf("the resources field is larger than %d bytes", maxResourcesFieldBytes))
		}
		up.resources, err = parseUploadResources(data)
		return err
	case "bits":
		if up.zipPath != "" {
			return apierr.UnprocessableEntity("The upload has more than one 'bits' field")
		}
		up.zipPath = filepath.Join(work, "package.zip")
		return spool(part, up.zipPath, a.uploads.limits.MaxZipBytes)
	default:
		return apierr.UnprocessableEntity(fmt.Sprintf("Unknown field(s): '%s'. Valid fields are: 'resources', 'bits'", shorten(part.FormName())))
	}
}

// spool copies r to a new file at path, failing once more than limit
// bytes have arrived.
func spool(r io.Reader, path string, limit int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create spool file: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(r, limit+1))
	if closeErr := f.Close(); err == nil && closeErr != nil {
		return fmt.Errorf("write spool file: %w", closeErr)
	}
	if err != nil {
		return err
	}
	if n > limit {
		return errUploadInvalid(fmt.Sprintf("the zip file is larger than the maximum of %d bytes", limit))
	}
	return nil
}

// multipartError turns errors of reading the body into client errors:
// an oversized body or a malformed multipart stream is the client's doing.
// API errors and local file errors pass through.
func multipartError(err error, maxBody int64) error {
	var apiErr *apierr.Error
	var maxErr *http.MaxBytesError
	var pathErr *os.PathError
	switch {
	case errors.As(err, &apiErr), errors.As(err, &pathErr):
		return err
	case errors.As(err, &maxErr):
		return errUploadInvalid(fmt.Sprintf("the request body is larger than the maximum of %d bytes", maxBody))
	default:
		return errUploadInvalid("the multipart body is malformed or truncated")
	}
}

// parseUploadResources decodes the "resources" field: a JSON array of
// matched files, each with path, mode (an octal string), checksum.value (a
// SHA-1) and size_in_bytes.
func parseUploadResources(data []byte) ([]appbits.Resource, error) {
	var payload []resourcePayload
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&payload); err != nil || dec.More() {
		return nil, apierr.UnprocessableEntity("Resources must be valid JSON: send an array of objects with path, mode, checksum.value and size_in_bytes")
	}
	resources := make([]appbits.Resource, 0, len(payload))
	for i, p := range payload {
		res, problem := p.resource()
		if problem != "" {
			return nil, apierr.UnprocessableEntity(fmt.Sprintf("Resources[%d] is invalid: %s", i, problem))
		}
		resources = append(resources, res)
	}
	return resources, nil
}

// resource validates one uploaded resource description. The mode is a Go
// os.FileMode in octal, as the cf CLI formats it, and only its permission
// bits are kept. A missing mode means 0644.
func (p resourcePayload) resource() (appbits.Resource, string) {
	switch {
	case p.Path == nil || *p.Path == "":
		return appbits.Resource{}, "path is required"
	case p.Checksum == nil || p.Checksum.Value == nil:
		return appbits.Resource{}, "checksum.value is required"
	case !appbits.ValidSHA1(strings.ToLower(*p.Checksum.Value)):
		return appbits.Resource{}, "checksum.value must be a SHA-1 of 40 hex digits"
	case p.SizeInBytes == nil || *p.SizeInBytes < 0:
		return appbits.Resource{}, "size_in_bytes must be a non-negative integer"
	}
	mode := uint64(0o644)
	if p.Mode != nil {
		var err error
		if mode, err = strconv.ParseUint(*p.Mode, 8, 32); err != nil {
			return appbits.Resource{}, fmt.Sprintf("mode '%s' must be an octal file mode such as '644'", shorten(*p.Mode))
		}
	}
	return appbits.Resource{Path: *p.Path, Mode: os.FileMode(mode).Perm(), SHA1: strings.ToLower(*p.Checksum.Value), Size: *p.SizeInBytes}, ""
}

// pushPackage writes the app directory as a gzip-compressed tar layer in
// work, pushes it as the package image, and moves pkg from
// PROCESSING_UPLOAD to READY, or to FAILED with data.error. The push
// outlives a client that hangs up, so the package never stays
// PROCESSING_UPLOAD because of one.
func (a *API) pushPackage(ctx context.Context, pkg store.Package, appDir, work string) (store.Package, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), registryTimeout)
	defer cancel()
	logger := loggerFrom(ctx, a.logger).With("package_guid", pkg.GUID, "app_guid", pkg.AppGUID)
	start := time.Now()

	result := store.PackageResult{State: store.PackageFailed, Error: "Upload failed: the package image could not be stored in the registry"}
	ref, err := a.pushAppDir(ctx, pkg, appDir, work)
	if err != nil {
		logger.Error("package upload failed", "error", err)
	} else {
		_, digest, _ := strings.Cut(ref, "@sha256:")
		result = store.PackageResult{State: store.PackageReady, Image: ref, Checksum: digest}
		logger.Info("package uploaded", "duration_ms", time.Since(start).Milliseconds())
	}
	return store.TransitionPackage(ctx, a.store.DB(), pkg.GUID, []string{store.PackageProcessingUpload}, result)
}

func (a *API) pushAppDir(ctx context.Context, pkg store.Package, appDir, work string) (string, error) {
	if a.registry == nil {
		return "", errors.New("no registry is configured")
	}
	layerPath := filepath.Join(work, "layer.tar.gz")
	if err := writeLayer(layerPath, appDir); err != nil {
		return "", err
	}
	open := func() (io.ReadCloser, error) { return os.Open(layerPath) }
	labels := map[string]string{labelPackageGUID: pkg.GUID, labelAppGUID: pkg.AppGUID}
	return a.registry.PushLayer(ctx, a.registry.PackageRepository(pkg.GUID), open, labels)
}

// writeLayer writes the tar of dir, gzip-compressed, to the new file path.
func writeLayer(path, dir string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create layer: %w", err)
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	if err := appbits.WriteTar(zw, dir); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("write layer: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write layer: %w", err)
	}
	return nil
}

// downloadPackage serves GET /v3/packages/:guid/download: a zip of the
// package rebuilt from its image layer, in the form the cf CLI uploads.
// Like Cloud Controller, only admins, read-only admins and space
// developers may download, because packages can contain secrets.
func (a *API) downloadPackage(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	pkg, err := a.visiblePackage(r)
	if err != nil {
		return nil, err
	}
	if err := a.authorizePackageDownload(ctx, actor, pkg); err != nil {
		return nil, err
	}
	if pkg.Type != store.PackageTypeBits {
		return nil, apierr.UnprocessableEntity("Package type must be bits.")
	}
	if pkg.State != store.PackageReady {
		return nil, apierr.UnprocessableEntity("Package has no bits to download.")
	}
	if a.registry == nil {
		return nil, errors.New("download package: no registry is configured")
	}

	layer, err := a.registry.OpenLayer(ctx, pkg.Image)
	if err != nil {
		return nil, fmt.Errorf("download package %s: %w", pkg.GUID, err)
	}
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		return store.RecordAuditEvent(ctx, tx, packageEvent(actor, "audit.app.package.download", pkg, nil))
	})
	if err != nil {
		layer.Close()
		return nil, err
	}

	logger := loggerFrom(ctx, a.logger).With("package_guid", pkg.GUID)
	body := &streamBody{
		contentType: "application/zip",
		header:      http.Header{"Content-Disposition": {`attachment; filename="package.zip"`}},
		write: func(w io.Writer) error {
			defer layer.Close()
			return appbits.WriteZip(w, layer)
		},
		logger: logger,
	}
	return &response{status: http.StatusOK, body: body}, nil
}

// authorizePackageDownload allows admins, read-only admins and space
// developers of the package's space.
func (a *API) authorizePackageDownload(ctx context.Context, actor *auth.Actor, pkg store.Package) error {
	if actor.IsAdmin() || actor.HasScope(auth.ScopeAdminReadOnly) {
		return nil
	}
	roles, err := a.store.UserRoles(ctx, actor.UserGUID, pkg.OrgGUID, pkg.SpaceGUID)
	if err != nil {
		return err
	}
	if !roles.Has(roleSpaceDeveloper) {
		return apierr.NotAuthorized()
	}
	return nil
}

// streamBody is a response body written as raw bytes rather than JSON.
// Once writing starts the status is sent, so a later failure can only be
// logged and the response cut short.
type streamBody struct {
	contentType string
	header      http.Header
	write       func(w io.Writer) error
	logger      *slog.Logger
}

func (s *streamBody) writeTo(w http.ResponseWriter, status int) {
	for k, vs := range s.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Type", s.contentType)
	w.WriteHeader(status)
	if err := s.write(w); err != nil {
		s.logger.Error("streaming the response failed", "error", err)
		panic(http.ErrAbortHandler)
	}
}
