-- One-record jobs with a fresh externalId per request, for B5.
counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  counter = counter + 1
  local body = string.format(
    '[{"externalId":"B5-%d","type":"New Subscription","productExternalId":"FUND-A",' ..
    '"investorExternalId":"INV-1","amount":"100.50","tradeDate":"2026-11-27"}]', counter)
  return wrk.format(nil, nil, nil, body)
end
