from orders_app.stream.server import main

main()
