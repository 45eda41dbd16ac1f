fn main() {
    println!(
        "{} {} ({})",
        exhibit::TOOL_NAME,
        exhibit::VERSION,
        exhibit::GIT_REVISION
    );
}
