//! XDP steering of UDP/4500 into AF_XDP sockets (placeholder: being written).
