# Ferry's container image: the static `ferry` binary alone, running as a
# non-root user on an image with no shell or package manager (the layout of
# a distroless "static" image, assembled here from scratch).
#
#   make image                      # docker build -t ferry:dev .
#   docker build --build-arg VERSION=v1.2.3 -t ferry:v1.2.3 .
#
# Pass --build-arg RUNTIME_BASE=<a distroless static nonroot image> to put
# the binary on that image instead of the assembled one; the files copied
# below are the ones such an image already has.
#
# The same image serves every role on Kubernetes: `ferry operator` for the
# operator Deployment and `ferry serve`, `ferry pull`, `ferry agent` in the
# pods it creates.

ARG GO_IMAGE=golang:1.26
ARG RUNTIME_BASE=scratch

FROM ${GO_IMAGE} AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The Makefile's `build` recipe (a test checks that the two agree).
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/ferryserve/ferry/internal/cli.Version=${VERSION}" -o /out/ferry ./cmd/ferry
# A root file system with what the static binary needs besides itself: CA
# certificates (storage over HTTPS), the time zone database, a passwd entry
# for the non-root user 65532, its home (the model cache,
# $HOME/.cache/ferry) and a sticky /tmp.
RUN set -eu; \
    mkdir -p /rootfs/etc/ssl/certs /rootfs/usr/share /rootfs/home/nonroot /rootfs/tmp; \
    cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/; \
    if [ -d /usr/share/zoneinfo ]; then cp -r /usr/share/zoneinfo /rootfs/usr/share/; fi; \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >/rootfs/etc/passwd; \
    printf 'root:x:0:\nnonroot:x:65532:\n' >/rootfs/etc/group; \
    chown 65532:65532 /rootfs/home/nonroot; \
    chmod 1777 /rootfs/tmp

FROM ${RUNTIME_BASE}
COPY --from=build /rootfs/ /
COPY --from=build /out/ferry /ferry
ENV HOME=/home/nonroot
USER 65532:65532
WORKDIR /home/nonroot
# 8080: HTTP (ferry serve's REST API; `ferry operator`'s metrics)
# 8081: gRPC (ferry serve); `ferry operator`'s /healthz and /readyz
# 9443: `ferry operator`'s admission webhooks
EXPOSE 8080 8081 9443
ENTRYPOINT ["/ferry"]
