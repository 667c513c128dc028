// Package browsertest drives the dashboard of package web in a real
// headless Chromium (through chromedp), against the application of
// example/dashboard. It is a module of its own so that the core module
// never lists chromedp.
//
// The tests need Debian's chromium (apt-get install chromium; .ci/run
// installs it). They are skipped, with a message, unless
// DURABLE_REQUIRE_BROWSER=1, which CI sets; with it a missing browser is
// a failure. DURABLE_CHROMIUM names the browser binary if it is not
// "chromium" on PATH. Screenshots are saved in the test's artifact
// directory (go test -artifacts -outputdir DIR keeps them) and their
// paths logged.
package browsertest
