"""Connected sessions and the local/global stores that hold them."""
