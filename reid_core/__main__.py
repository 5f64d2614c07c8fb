from reid_core.cli import main

main()
