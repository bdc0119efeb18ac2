module keyrotor.dev/verify

go 1.24
