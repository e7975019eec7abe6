from vines_server.main import main

main()
