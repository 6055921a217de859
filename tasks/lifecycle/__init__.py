"""Who may write a persona when (locks), and forget across the lake, search and Prefect."""
