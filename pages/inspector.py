import streamlit as st
st.title("inspector")
st.info("Not available yet.")
