-- wrk script for the ingress benchmark: a V1 batch-1 predict of the
-- xgboost-iris example. The Host header, when wanted, is given with -H.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"instances": [[6.8, 2.8, 4.8, 1.4]]}'
