// Package imagebuild turns a build context and its Dockerfile into a
// container image and pushes it to a registry, for Fornax's build runner.
// Images built FROM scratch use OCI media types; others keep the manifest
// format of their base, so that base layers can be reused as they are.
//
// Builder is the seam between the runner and the tools that do the work.
// Daemonless, in this package, needs neither a Docker daemon nor any
// privilege: it reads the base image from its registry, writes each COPY or
// ADD as a new layer, edits the image config, and keeps the result in memory
// until it is pushed. Builders that must run commands (the kaniko builder)
// plug into the same interface.
//
// This package must never run user code. Daemonless builds only what it can
// derive from files and metadata; a RUN, or any instruction it does not
// carry out faithfully, fails the build with an *UnsupportedError naming the
// Dockerfile line, so the caller can hand the job to a builder that executes
// commands in a sandbox instead. It must also never put credentials in an
// error or a log line, and never send them in the clear: only loopback
// registries are spoken to over plain HTTP.
package imagebuild
