fn main() {
    println!("ferrokv");
}
