//! Containers as their runtimes describe them: names from the runtimes'
//! own files on the node, and the cgroups containers run in.
