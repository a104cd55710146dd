from presence.expression.agreement import main

main()
