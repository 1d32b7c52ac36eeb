-- wrk script: POST /api/orders with the original system's body (a limit buy), as one user.
-- Usage: API_KEY=... USER_ID=... wrk -t2 -c32 -d20s --latency -s orders_app/bench/post_orders.lua \
--          http://127.0.0.1:3000/api/orders
local key = os.getenv("API_KEY")
local user_id = os.getenv("USER_ID")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.body = '{"userId": ' .. user_id .. ', "order_type": "buy", "currency_symbol": "BTC", "price": 5.123456, "quantity": 0.01}'
local shown = false
response = function(status, headers, body)
  if status >= 300 and not shown then
    io.write("first non-2xx: " .. status .. " " .. body .. "\n")
    shown = true
  end
end
