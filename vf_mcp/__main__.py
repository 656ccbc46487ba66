from vf_mcp import main

main()
