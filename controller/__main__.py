from controller.entry import main

main()
