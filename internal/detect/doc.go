// Package detect is Ferry's drift and outlier detector for live traffic: a
// CloudEvents sink that Ferry's request logger (or KServe's) posts
// inference events to. Each request event's instances become feature rows;
// an outlier detector scores every row at once, a drift detector collects
// rows into windows (by count, or by age) and tests each full window
// against reference data. Verdicts go out as CloudEvents to a reply URL,
// shaped like alibi-detect's server replies, and as Prometheus metrics.
//
// The statistics live in the subpackages: stats (KS, chi-squared,
// corrections), drift, outlier, and refdata (reference files).
//
// An event is acknowledged (HTTP 200) only after its rows are counted, so a
// logger that retries until acknowledged loses nothing on the way. Window
// state is held in memory: a restart drops partial windows, and the server
// logs how many rows it dropped when it stops.
package detect
