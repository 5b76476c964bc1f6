fn main() {
    println!("gobs-app: not built yet");
}
